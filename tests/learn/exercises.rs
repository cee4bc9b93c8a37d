//! The tour's two learner zones stay in shape: every chapter 01-14 opens
//! with a `**本章要点**` block (3-6 points, in Chinese) right after its title
//! and ends with `**Exercises.**` after `**Proved by.**` (2-4 numbered
//! exercises, each with a collapsed `<details>` answer). And the commands
//! the exercises give stay runnable: every `--flag` passed to a
//! `cargo run --example NAME -- ...` exists in that example's `--help`.
//!
//! Needs the example binaries (`cargo build --examples`; `cargo test --test
//! learn` alone does not build them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::example_binary;

/// `docs/tour/NN-*.md` for NN in 01..=14: (file name, text), in order.
fn chapters() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tour");
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.ends_with(".md")
                && name.get(..2).and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| (1..=14).contains(&n))
        })
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            (name, text)
        })
        .collect();
    found.sort();
    let numbers: Vec<&str> = found.iter().map(|(name, _)| &name[..2]).collect();
    let expected: Vec<String> = (1..=14).map(|n| format!("{n:02}")).collect();
    assert_eq!(numbers, expected, "docs/tour must hold exactly one file per chapter 01-14");
    found
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// The problems of one chapter's 本章要点 block.
fn summary_problems(name: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut lines = text.lines();
    let title = lines.next().unwrap_or("");
    let number: u32 = name[..2].parse().unwrap();
    if !title.starts_with(&format!("# {number}. ")) {
        problems.push(format!("{name}: line 1 is not `# {number}. Title`: {title:?}"));
    }
    let mut rest = lines.skip_while(|l| l.trim().is_empty());
    if rest.next() != Some("**本章要点**") {
        problems.push(format!("{name}: the first line after the title is not `**本章要点**`"));
        return problems;
    }
    let points: Vec<&str> = rest
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("- "))
        .collect();
    if !(3..=6).contains(&points.len()) {
        problems.push(format!("{name}: 本章要点 has {} points, want 3-6", points.len()));
    }
    for point in &points {
        if !point.chars().any(is_cjk) {
            problems.push(format!("{name}: a 本章要点 point is not in Chinese: {point:?}"));
        }
    }
    problems
}

/// The exercise zone: everything from `**Exercises.**` to the end, or a problem.
fn exercise_zone<'a>(name: &str, text: &'a str) -> Result<&'a str, String> {
    let start = text.find("\n**Exercises.**").ok_or(format!("{name}: no `**Exercises.**` section"))?;
    let proved = text.find("\n**Proved by.**").ok_or(format!("{name}: no `**Proved by.**` paragraph"))?;
    if start < proved {
        return Err(format!("{name}: `**Exercises.**` comes before `**Proved by.**`"));
    }
    Ok(&text[start + 1..])
}

/// The exercises of a zone: the text of each top-level `N. ` item.
fn exercises(zone: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for line in zone.lines() {
        let numbered = line
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if numbered {
            items.push(String::new());
        }
        if let Some(item) = items.last_mut() {
            item.push_str(line);
            item.push('\n');
        }
    }
    items
}

fn exercise_problems(name: &str, text: &str) -> Vec<String> {
    let zone = match exercise_zone(name, text) {
        Ok(zone) => zone,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    let items = exercises(zone);
    if !(2..=4).contains(&items.len()) {
        problems.push(format!("{name}: {} exercises, want 2-4", items.len()));
    }
    for (i, item) in items.iter().enumerate() {
        let opens = item.matches("<details><summary>Answer</summary>").count();
        let closes = item.matches("</details>").count();
        if opens != 1 || closes != 1 {
            problems.push(format!(
                "{name}: exercise {} needs one `<details><summary>Answer</summary>` ... `</details>`",
                i + 1
            ));
            continue;
        }
        let (question, answer) = item.split_once("<details>").unwrap();
        if !question.contains("Run: `") && !question.contains("Run:\n") {
            problems.push(format!("{name}: exercise {} gives no command (`Run: ...`)", i + 1));
        }
        if !answer.contains("```") {
            problems.push(format!("{name}: exercise {}'s answer quotes no output (a code block)", i + 1));
        }
    }
    problems
}

#[test]
fn every_chapter_has_a_summary_and_exercises() {
    let mut problems = Vec::new();
    for (name, text) in chapters() {
        problems.extend(summary_problems(&name, &text));
        problems.extend(exercise_problems(&name, &text));
    }
    assert!(problems.is_empty(), "tour chapters out of shape:\n{}", problems.join("\n"));
}

/// An example and, when its arguments start with one (`heartbeat client`),
/// its subcommand: whose `--help` names the flags.
type Invocation = (String, Option<String>);

/// The subcommand among `args`: a first word of lowercase letters.
fn subcommand(args: &[&str]) -> Option<String> {
    args.first().filter(|w| w.bytes().all(|b| b.is_ascii_lowercase())).map(|w| (*w).to_owned())
}

/// The `--flags` among `args`.
fn flags_of(args: &[&str]) -> Vec<String> {
    args.iter()
        .filter_map(|word| word.strip_prefix("--").filter(|f| !f.is_empty()))
        .map(|flag| format!("--{}", flag.split('=').next().unwrap()))
        .collect()
}

/// Every `cargo run ... --example NAME ... -- ARGS` and every
/// `target/release/examples/NAME ARGS` in `zone`: (NAME, subcommand) -> the
/// `--flags` among ARGS (up to the closing backtick: a code span may wrap
/// lines).
fn example_flags(zone: &str, into: &mut BTreeMap<Invocation, BTreeSet<String>>) {
    for (at, _) in zone.match_indices("examples/") {
        if !zone[..at].ends_with("target/release/") {
            continue;
        }
        let command = zone[at + "examples/".len()..].split('`').next().unwrap();
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some((example, args)) = words.split_first() else { continue };
        into.entry(((*example).to_owned(), subcommand(args))).or_default().extend(flags_of(args));
    }
    for (at, _) in zone.match_indices("cargo run") {
        let command = zone[at..].split('`').next().unwrap();
        let mut words = command.split_whitespace();
        let Some(example) = words.by_ref().skip_while(|w| *w != "--example").nth(1) else {
            continue;
        };
        let args: Vec<&str> = command.split_whitespace().skip_while(|w| *w != "--").skip(1).collect();
        into.entry((example.to_owned(), subcommand(&args))).or_default().extend(flags_of(&args));
    }
}

/// Whether `help` names `flag` as a whole word (`--threads` is not `--threads-x`).
fn names_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let next = help[at + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn exercise_flags_exist_in_the_examples_help() {
    let mut wanted = BTreeMap::new();
    for (name, text) in chapters() {
        if let Ok(zone) = exercise_zone(&name, &text) {
            example_flags(zone, &mut wanted);
        }
    }
    let flag_count: usize = wanted.values().map(BTreeSet::len).sum();
    assert!(
        wanted.len() >= 10 && flag_count >= 10,
        "the exercises name too few examples and flags: {wanted:?}"
    );
    let mut problems = Vec::new();
    for ((example, sub), flags) in &wanted {
        let output = Command::new(example_binary(example))
            .args(sub)
            .arg("--help")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run examples/{example} {sub:?} --help: {e}"));
        let help =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "examples/{example} {sub:?} --help failed: {help}");
        for flag in flags {
            if !names_flag(&help, flag) {
                problems.push(format!("examples/{example} {sub:?} --help does not name {flag}"));
            }
        }
    }
    assert!(problems.is_empty(), "exercise commands with unknown flags:\n{}", problems.join("\n"));
}
