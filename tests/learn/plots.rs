//! `ladder --csv`/`--svg` and `backends --svg` on their smallest runs: the
//! CSV is a header and rows of numbers, one per cell; the SVG is well-formed
//! XML with one panel per measure and, in each, one titled `<polyline>` per
//! rung or backend with a point per client count or N. Each run is bounded
//! (killed after 20 s; it takes well under a second).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::{example_binary, exit_within};

/// Runs an example with its output in files (no pipe to fill), killed after 20 s.
fn run(name: &str, args: &[&str]) -> Output {
    let dir = std::env::temp_dir();
    let tag = format!("muxloop-plots-{}-{name}-{}", std::process::id(), args.len());
    let (out, err) = (dir.join(format!("{tag}.out")), dir.join(format!("{tag}.err")));
    let mut child = Command::new(example_binary(name))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("run examples/{name}: {e}"));
    let status = exit_within(&mut child, Duration::from_secs(20)).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("examples/{name} {args:?} still running after 20 s")
    });
    let output =
        Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() };
    let _ = (std::fs::remove_file(out), std::fs::remove_file(err));
    output
}

fn temp_svg(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("muxloop-plots-{}-{name}.svg", std::process::id()))
}

/// A panel of the figure: its title and its series (title, point count).
#[derive(Debug)]
struct Panel {
    title: String,
    series: Vec<(String, usize)>,
}

/// Checks that `text` is well-formed XML of the shape `common/svg.rs` writes
/// (every tag closed in order, one root `<svg>`, attribute values quoted)
/// and returns its panels.
fn parse_svg(text: &str) -> Vec<Panel> {
    let mut stack: Vec<String> = Vec::new();
    let mut panels: Vec<Panel> = Vec::new();
    let mut rest = text.trim();
    assert!(rest.starts_with("<svg "), "not an <svg> root: {:?}", &rest[..rest.len().min(40)]);
    let mut roots = 0;
    // (element name, class) of the innermost `<g>`s, to place titles and polylines.
    let mut groups: Vec<Option<String>> = Vec::new();
    let mut pending_title: Option<String> = None;
    while let Some(open) = rest.find('<') {
        let between = &rest[..open];
        assert!(!between.contains('>'), "stray '>' in text {between:?}");
        if let Some(target) = pending_title.take() {
            let title = between.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
            match target.as_str() {
                "panel" => panels.push(Panel { title, series: Vec::new() }),
                "series" => panels.last_mut().expect("a series outside a panel").series.push((title, 0)),
                _ => {}
            }
        }
        let close = rest[open..].find('>').expect("an unclosed tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(top, name, "</{name}> closes <{top}>");
            if name == "g" {
                groups.pop();
            }
            if stack.is_empty() {
                roots += 1;
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag.trim_end_matches('/').split_whitespace().next().expect("an empty tag").to_string();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "bad element name {name:?}");
        assert!(!stack.is_empty() || name == "svg", "<{name}> outside the root");
        let class = tag.split("class=\"").nth(1).and_then(|c| c.split('"').next()).map(str::to_string);
        match name.as_str() {
            "g" if !self_closing => groups.push(class),
            "title" => pending_title = groups.last().cloned().flatten().or(Some("svg".into())),
            "polyline" => {
                assert_eq!(
                    groups.last().cloned().flatten().as_deref(),
                    Some("series"),
                    "a polyline outside a series"
                );
                let points = tag.split("points=\"").nth(1).and_then(|p| p.split('"').next()).unwrap_or("");
                let count = points.split_whitespace().count();
                for p in points.split_whitespace() {
                    let (x, y) = p.split_once(',').unwrap_or_else(|| panic!("bad point {p:?}"));
                    assert!(x.parse::<f64>().is_ok() && y.parse::<f64>().is_ok(), "bad point {p:?}");
                }
                let series = panels
                    .last_mut()
                    .and_then(|p| p.series.last_mut())
                    .expect("a polyline with no series title");
                assert_eq!(series.1, 0, "two polylines in series {}", series.0);
                series.1 = count;
            }
            _ => {}
        }
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    assert_eq!(roots, 1, "one root element");
    panels
}

/// Checks the panels' titles and that each has every series, in order, each
/// with `points` points.
fn assert_panels(panels: &[Panel], titles: &[&str], series: &[&str], points: usize) {
    let got: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(got, titles, "panels");
    for panel in panels {
        let want: Vec<(String, usize)> = series.iter().map(|s| (s.to_string(), points)).collect();
        assert_eq!(panel.series, want, "series of panel {:?}", panel.title);
    }
}

#[test]
fn ladder_prints_csv_and_draws_one_line_per_rung_in_each_panel() {
    let svg = temp_svg("ladder");
    let path = svg.to_str().unwrap();
    let args = [
        "--no-build",
        "--rungs",
        "4,7",
        "--clients",
        "1,3",
        "--rounds",
        "2",
        "--seconds",
        "5",
        "--csv",
        "--svg",
        path,
    ];
    let out = run("ladder", &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ladder {args:?}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("rung,clients,done,failed,round_trips_per_s,threads,processes,rss_mib,cpu_s,time_s")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let cells: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        cells,
        [
            ("ladder_04_select", "1"),
            ("ladder_04_select", "3"),
            ("ladder_07_event_loop", "1"),
            ("ladder_07_event_loop", "3")
        ]
    );
    for row in &rows {
        assert_eq!(row.len(), 10, "{row:?}");
        let numbers: Vec<f64> =
            row[1..].iter().map(|f| f.parse().unwrap_or_else(|_| panic!("{f:?} in {row:?}"))).collect();
        assert_eq!((numbers[1], numbers[2]), (numbers[0], 0.0), "every client done, none failed: {row:?}");
        assert!(numbers[3] > 0.0 && numbers[4] >= 1.0 && numbers[5] == 1.0 && numbers[6] > 0.0, "{row:?}");
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    let panels = parse_svg(&text);
    assert_panels(
        &panels,
        &["round trips per second", "server threads", "server memory"],
        &["ladder_04_select", "ladder_07_event_loop"],
        2,
    );
}

#[test]
fn backends_draws_time_and_fds_scanned_one_line_per_backend() {
    let svg = temp_svg("backends");
    let path = svg.to_str().unwrap();
    let args = [
        "--sizes",
        "10,20,40",
        "--runs",
        "1",
        "--writes",
        "10",
        "--only",
        "select,poll,epoll",
        "--svg",
        path,
    ];
    let out = run("backends", &args);
    assert!(
        out.status.success(),
        "backends {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    let panels = parse_svg(&text);
    assert_panels(&panels, &["time per run", "fds scanned per dispatch"], &["select", "poll", "epoll"], 3);
    // And its CSV: a header, a row of numbers per backend and N.
    let out =
        run("backends", &["--sizes", "10", "--runs", "1", "--writes", "10", "--only", "poll,epoll", "--csv"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "backend,n,active,writes,timers,median_us,scanned_per_dispatch");
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, backend) in lines[1..].iter().zip(["poll", "epoll"]) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[..5], [backend, "10", "1", "10", "false"], "{line}");
        assert!(fields[5..].iter().all(|f| f.parse::<f64>().is_ok()), "{line}");
    }
}

#[test]
fn the_parser_refuses_what_is_not_xml() {
    for bad in [
        "<svg a=\"1\"><g></svg>",
        "<svg a=\"1\"></svg><svg a=\"1\"></svg>",
        "<svg a=\"1\"><g class=\"panel\"></g>",
    ] {
        assert!(std::panic::catch_unwind(|| parse_svg(bad)).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn bad_plot_flags_exit_2_naming_the_flag() {
    for (name, args, needle) in [
        ("ladder", &["--svg"][..], "--svg"),
        ("ladder", &["--rungs", "12"][..], "--rungs"),
        ("ladder", &["--seconds", "-1"][..], "--seconds"),
        ("ladder", &["--plot"][..], "--plot"),
        ("backends", &["--svg"][..], "--svg"),
        ("backends", &["--only", "kqueue"][..], "--only"),
        ("backends", &["--sizes", "5", "--active", "6"][..], "--active"),
    ] {
        let out = run(name, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert!(stderr.contains(needle) && stderr.contains("error:"), "{name} {args:?}: {stderr}");
    }
}
