//! Every relative link and image in the markdown docs leads somewhere:
//! `README.md` and every `docs/**/*.md` (the tour, its concept index and
//! glossary, and the other docs), as a code host shows them.
//!
//! For each `[text](target)` and `![alt](target)` outside code blocks and
//! code spans whose target is a path (not a URL), the file or directory must
//! exist, relative to the markdown file; a `#anchor` on a markdown target (or
//! alone, for the same file) must be one of its headings, slugged as GitHub
//! does. Intra-doc links (`crate::...`, `super::...`) are rustdoc's, not
//! checked here: the tour is included into rustdoc by `src/tour.rs` (through
//! `build.rs`, which turns `NN-name.md` links into module paths), and
//! `RUSTDOCFLAGS="-D warnings" cargo doc --no-deps` fails on a broken one. A
//! bare word as a target (`[epoll](epoll)`) is refused in the tour: rustdoc
//! may resolve it, a code host cannot.
//!
//! The SVG figures the docs show must be self-contained: no bitmap
//! (`<image`), no script, nothing fetched from elsewhere, and well-formed
//! comments (`--` inside one makes the file unreadable to a browser).

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `README.md` and every `.md` file under `docs/`, sorted.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut files);
    files.sort();
    files
}

/// One link or image: its line (1-based), target, and whether it is an image.
#[derive(Debug)]
struct Link {
    line: usize,
    target: String,
    image: bool,
}

/// The lines of `text` outside fenced code blocks, with their numbers.
fn prose_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter_map(move |(i, line)| {
        let fence = line.trim_start().starts_with("```");
        fenced ^= fence;
        (!fenced && !fence).then_some((i + 1, line))
    })
}

/// The links and images of `text`, outside code blocks and code spans.
fn links(text: &str) -> Vec<Link> {
    let mut found = Vec::new();
    for (line_no, line) in prose_lines(text) {
        let mut rest = line;
        while let Some(at) = rest.find(['[', '`']) {
            if rest.as_bytes()[at] == b'`' {
                let end = rest[at + 1..].find('`').map_or(rest.len(), |e| at + 2 + e);
                rest = &rest[end..];
                continue;
            }
            let image = at > 0 && rest.as_bytes()[at - 1] == b'!';
            let parsed = rest[at..].find("](").map(|c| at + c).and_then(|close| {
                let end = rest[close + 2..].find(')').map(|e| close + 2 + e)?;
                Some((close, end))
            });
            match parsed.filter(|&(close, _)| !rest[at + 1..close].contains(['[', ']'])) {
                Some((close, end)) => {
                    // `[text](target "title")`: the target is the first word.
                    let target = rest[close + 2..end].split_whitespace().next().unwrap_or_default();
                    found.push(Link { line: line_no, target: target.to_owned(), image });
                    rest = &rest[end + 1..];
                }
                None => rest = &rest[at + 1..],
            }
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, inline markup gone, spaces to
/// `-`, punctuation other than `-` and `_` dropped; repeats get `-1`, `-2`.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else { continue };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        // Link texts stay, their targets go.
        let mut plain = String::new();
        let mut rest = heading.trim().trim_end_matches('#').trim();
        while let Some(open) = rest.find("](") {
            plain.push_str(&rest[..open]);
            rest = rest[open..].find(')').map_or("", |end| &rest[open + end + 1..]);
        }
        plain.push_str(rest);
        let slug: String = plain
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c),
                _ => None,
            })
            .flat_map(char::to_lowercase)
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// `base/relative` with `.` and `..` resolved.
fn resolve(base: &Path, relative: &str) -> PathBuf {
    let mut path = base.to_path_buf();
    for part in Path::new(relative).components() {
        match part {
            Component::ParentDir => {
                path.pop();
            }
            Component::CurDir => {}
            other => path.push(other),
        }
    }
    path
}

/// What is wrong with the links of `text`, the contents of `file`.
fn check(file: &Path, text: &str) -> Vec<String> {
    let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    let in_tour = file.parent().is_some_and(|d| d.ends_with("docs/tour"));
    let dir = file.parent().expect("a file has a directory");
    let mut problems = Vec::new();
    for link in links(text) {
        let target = link.target.as_str();
        let kind = if link.image { "image" } else { "link" };
        let at = format!("{name}:{}: {kind} `{target}`", link.line);
        if target.contains("://") || target.starts_with("mailto:") || target.contains("::") {
            continue; // a URL, or an intra-doc path (cargo doc checks those)
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target, None),
        };
        if path.is_empty() && anchor.is_none() {
            problems.push(format!("{at}: empty target"));
            continue;
        }
        if !path.is_empty() && !path.contains(['.', '/']) {
            if in_tour {
                problems.push(format!(
                    "{at}: a bare word works only in rustdoc; link a chapter file (`NN-name.md`) or `crate::path`"
                ));
            }
            continue;
        }
        let resolved = if path.is_empty() { file.to_path_buf() } else { resolve(dir, path) };
        if !path.is_empty() && !resolved.exists() {
            problems.push(format!(
                "{at}: {} does not exist",
                resolved.strip_prefix(root()).unwrap_or(&resolved).display()
            ));
            continue;
        }
        if let Some(anchor) = anchor
            && resolved.extension().is_some_and(|e| e == "md")
        {
            let target_text = if path.is_empty() {
                text.to_owned()
            } else {
                std::fs::read_to_string(&resolved).unwrap_or_default()
            };
            if !anchors(&target_text).contains(anchor) {
                problems.push(format!("{at}: no heading #{anchor} there"));
            }
        }
        if link.image && resolved.extension().is_some_and(|e| e == "svg") {
            let svg = std::fs::read_to_string(&resolved).unwrap_or_default();
            problems.extend(svg_problems(&svg).into_iter().map(|p| format!("{at}: {p}")));
        }
    }
    problems
}

/// Why an SVG figure is not self-contained or not well-formed enough for a browser.
fn svg_problems(svg: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !svg.contains("<svg") {
        problems.push("not an SVG file".to_owned());
    }
    for bad in ["<image", "<script", "<foreignObject", "href=\"http", "@import", "url(http"] {
        if svg.contains(bad) {
            problems.push(format!("contains `{bad}` (a figure ships everything it shows)"));
        }
    }
    for comment in svg.split("<!--").skip(1) {
        let body = comment.split_once("-->").map_or(comment, |(body, _)| body);
        if body.contains("--") {
            problems.push("a comment contains `--` (not XML: browsers refuse the file)".to_owned());
        }
    }
    problems
}

#[test]
fn every_relative_link_and_image_exists() {
    let files = markdown_files();
    assert!(files.len() >= 20, "README and docs/**/*.md: only {} files found", files.len());
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        checked += links(&text).len();
        problems.extend(check(file, &text));
    }
    assert!(checked >= 100, "only {checked} links found: is the parser broken?");
    assert!(problems.is_empty(), "broken links or images:\n{}", problems.join("\n"));
}

/// The checker itself: a chapter with one break of each kind beside good links.
#[test]
fn planted_breaks_are_found() {
    let file = root().join("docs/tour/99-planted.md");
    let text = "# 99. Planted\n\n\
        ## A heading, with `code`\n\n\
        Good: [epoll](05-epoll.md), [tests](../tests.md#tests), [here](#a-heading-with-code),\n\
        [item](crate::EventLoop), [web](https://example.org/x.md), ![fig](figures/reactor.svg).\n\
        Ignored: `[span](missing.md)`.\n\n\
        ```text\n[fenced](missing.md)\n```\n\n\
        Bad: [chapter](05-epol.md), ![figure](figures/no-such.svg), [anchor](05-epoll.md#no-such-heading),\n\
        [here](#nowhere), [bare](epoll).\n";
    let problems = check(&file, text);
    assert_eq!(problems.len(), 5, "expected the five planted breaks, got:\n{}", problems.join("\n"));
    for (problem, expected) in
        problems.iter().zip(["05-epol.md", "no-such.svg", "#no-such-heading", "#nowhere", "bare word"])
    {
        assert!(problem.contains(expected), "{problem:?} should be about {expected}");
    }
    let broken_svg =
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- run with --flag --><image href=\"x.png\"/></svg>";
    assert_eq!(svg_problems(broken_svg).len(), 2, "{:?}", svg_problems(broken_svg));
}

#[test]
fn anchors_are_slugged_as_github_does() {
    let text =
        "# 5. epoll\n## The two commands\n## `Buffer::read_fd` and [links](x.md)\n## The two commands\n";
    let got: Vec<String> = anchors(text).into_iter().collect();
    assert_eq!(got, ["5-epoll", "bufferread_fd-and-links", "the-two-commands", "the-two-commands-1"]);
}
