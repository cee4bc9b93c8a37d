//! Picks the compile-time default dispatcher, the way yolanda's CMake file
//! does `check_symbol_exists(epoll_create ...)` and defines `EPOLL_ENABLE`,
//! and says which system calls the library may use.
//!
//! Features only choose which backend becomes `DefaultDispatcher`; every
//! backend the platform has is compiled whatever is chosen, so features stay
//! additive. Priority: `select` > `poll` > `uring` > `epoll`. If epoll (or
//! io_uring) is wanted but the build has none, fall back (to epoll or poll)
//! and say so with a cargo warning.
//!
//! The cfgs emitted for the library (and, by Cargo, every target of this
//! package):
//!
//! - `muxloop_linux`: the Linux-only calls are available (`accept4`,
//!   `SOCK_NONBLOCK`/`SOCK_CLOEXEC`, `pipe2`, `eventfd`, `signalfd`,
//!   `sendfile`, `splice`, `TCP_CORK`, `recvmmsg`/`sendmmsg`, `/proc`).
//! - `muxloop_has_epoll`, `muxloop_has_uring`: those backends are compiled.
//! - `muxloop_dispatcher="..."`: the default backend.
//!
//! All three are on for Linux (epoll and `muxloop_linux` also for Android),
//! unless the build sets `--cfg muxloop_portable`
//! (`RUSTFLAGS="--cfg muxloop_portable"`): then all are off and the library
//! compiles the POSIX-only paths a macOS or BSD build would use (`accept` +
//! `fcntl`, `pipe` + `fcntl`, the self-pipe for signals, `pread` + `send` for
//! files, `poll` as the default). Linux is what is tested; the portable cfg
//! exercises those POSIX-only paths on Linux; a real non-Linux target is not
//! tested here.
//!
//! It also prepares the tour for rustdoc ([`tour_docs`], at the end): the
//! chapters in `docs/tour/` are written for a code host, where
//! `![alt](figures/x.svg)` shows the picture and `[text](05-epoll.md)` opens
//! the chapter; rustdoc copies no image file and knows no `.md` file, so
//! each chapter is copied into `OUT_DIR` with those two rewritten, and
//! `src/tour.rs` includes the copies.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(muxloop_dispatcher, values(\"select\", \"poll\", \"uring\", \"epoll\"))"
    );
    println!("cargo::rustc-check-cfg=cfg(muxloop_has_epoll)");
    println!("cargo::rustc-check-cfg=cfg(muxloop_has_uring)");
    println!("cargo::rustc-check-cfg=cfg(muxloop_linux)");
    println!("cargo::rustc-check-cfg=cfg(muxloop_portable)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_CFG_MUXLOOP_PORTABLE");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let portable = env::var_os("CARGO_CFG_MUXLOOP_PORTABLE").is_some();
    let linux_like = matches!(target_os.as_str(), "linux" | "android");
    let linux_calls = linux_like && !portable;
    let has_epoll = linux_calls;
    let has_uring = target_os == "linux" && !portable;
    let platform = if portable {
        format!("target_os={target_os} with --cfg muxloop_portable")
    } else {
        format!("target_os={target_os}")
    };
    let feature = |name: &str| env::var_os(format!("CARGO_FEATURE_{}", name.to_uppercase())).is_some();

    let chosen = if feature("select") {
        "select"
    } else if feature("poll") {
        "poll"
    } else if feature("uring") && has_uring {
        "uring"
    } else if has_epoll {
        if feature("uring") {
            println!("cargo::warning=muxloop: io_uring is not available ({platform}); using epoll");
        }
        "epoll"
    } else {
        if feature("uring") {
            println!("cargo::warning=muxloop: io_uring is not available ({platform}); using poll");
        } else if feature("epoll") {
            println!("cargo::warning=muxloop: epoll is not available ({platform}); using poll");
        }
        "poll"
    };

    if linux_calls {
        println!("cargo::rustc-cfg=muxloop_linux");
    }
    if has_epoll {
        println!("cargo::rustc-cfg=muxloop_has_epoll");
    }
    if has_uring {
        println!("cargo::rustc-cfg=muxloop_has_uring");
    }
    println!("cargo::rustc-cfg=muxloop_dispatcher=\"{chosen}\"");

    tour_docs();
}

// ---- The tour for rustdoc ----

/// Writes `OUT_DIR/docs/tour/NAME.md` for every `docs/tour/NAME.md`, the way
/// rustdoc can show it:
///
/// - An image `![alt](PATH)` whose `PATH` is relative (to `docs/tour/`)
///   becomes `<img alt="alt" src="data:image/svg+xml;base64,...">`: the file
///   itself, inlined, since rustdoc copies no image next to the page. As an
///   `<img>` (not an inline `<svg>`), a figure's ids and styles cannot clash
///   with the page's or another figure's, and it keeps its alt text.
/// - A link `[text](NN-name.md#anchor)` to a chapter becomes the intra-doc
///   link `[text](crate::tour::module#anchor)`, the module being the one of
///   `src/tour.rs` that includes that chapter, so rustdoc checks it.
///
/// Anything else is left as it is (`crate::...` links are rustdoc's own).
/// Fenced code blocks and `code spans` are not touched. A relative link or
/// image this cannot resolve is left unchanged with a cargo warning (the
/// `links` test in `tests/learn/` fails on it too).
fn tour_docs() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("docs/tour");
    let tour = root.join("docs/tour");
    // A directory: cargo rebuilds when anything under it changes (chapters, figures).
    println!("cargo::rerun-if-changed=docs/tour");
    println!("cargo::rerun-if-changed=src/tour.rs");
    let tour_rs = fs::read_to_string(root.join("src/tour.rs")).expect("src/tour.rs");
    let modules = chapter_modules(&tour_rs);
    fs::create_dir_all(&out).expect("create OUT_DIR/docs/tour");
    let mut chapters: Vec<PathBuf> = fs::read_dir(&tour)
        .expect("docs/tour")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    for chapter in chapters {
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&chapter).unwrap_or_else(|e| panic!("{}: {e}", chapter.display()));
        let rewritten = rewrite_chapter(&text, &name, &tour, &root, &modules);
        fs::write(out.join(&name), rewritten).expect("write a chapter to OUT_DIR");
    }
}

/// `(chapter file name, module path)` for every `docs/tour/X.md` that
/// `src/tour.rs` includes: the file's module is the last `pub mod NAME`
/// opened before the include (`crate::tour::NAME`), or the tour module itself
/// for an include before any.
fn chapter_modules(tour_rs: &str) -> Vec<(String, String)> {
    let mut current = None;
    let mut modules = Vec::new();
    for line in tour_rs.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("pub mod ") {
            current = rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().map(str::to_owned);
        }
        if let Some((_, after)) = line.split_once("docs/tour/")
            && let Some((file, _)) = after.split_once(".md\"")
        {
            let module = match &current {
                Some(m) => format!("crate::tour::{m}"),
                None => "crate::tour".to_owned(),
            };
            modules.push((format!("{file}.md"), module));
        }
    }
    modules
}

/// One chapter with its figures inlined and its chapter links rewritten.
fn rewrite_chapter(text: &str, name: &str, tour: &Path, root: &Path, modules: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        let fence = line.trim_start().starts_with("```");
        fenced ^= fence;
        if fenced || fence {
            out.push_str(line);
        } else {
            out.push_str(&rewrite_links(line, name, tour, root, modules));
        }
    }
    out
}

/// Rewrites the `[text](target)` and `![alt](target)` of one line, outside
/// `code spans` (a label may hold code spans).
fn rewrite_links(line: &str, name: &str, tour: &Path, root: &Path, modules: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(['[', '`']) {
        if rest.as_bytes()[at] == b'`' {
            // A code span: copied as it is, up to its closing backtick.
            let end = rest[at + 1..].find('`').map_or(rest.len(), |e| at + 2 + e);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let open = at;
        let image = open > 0 && rest.as_bytes()[open - 1] == b'!';
        let parsed = rest[open..].find("](").map(|c| open + c).and_then(|close| {
            let end = rest[close + 2..].find(')').map(|e| close + 2 + e)?;
            Some((close, end))
        });
        let Some((close, end)) = parsed.filter(|&(close, _)| !rest[open + 1..close].contains(['[', ']']))
        else {
            // Not a link: go past this `[`.
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
            continue;
        };
        let (label, target) = (&rest[open + 1..close], &rest[close + 2..end]);
        // A file path (`figures/x.svg`, `05-epoll.md#x`), not a URL nor an
        // intra-doc path (`Buffer`, `crate::X`, `super::x`).
        let path = target.split('#').next().unwrap_or_default();
        let relative = path.contains(['.', '/']) && !target.contains(':');
        let replacement = match (relative, image) {
            (false, _) => None,
            (true, true) => inline_image(label, target, tour, root),
            (true, false) => chapter_link(target, modules),
        };
        match replacement {
            Some(html) if image => {
                out.push_str(&rest[..open - 1]);
                out.push_str(&html);
            }
            Some(link) => {
                out.push_str(&rest[..close + 2]);
                out.push_str(&link);
                out.push(')');
            }
            None => {
                if relative {
                    println!(
                        "cargo::warning=docs/tour/{name}: `{target}` is neither a chapter in src/tour.rs nor an image file: rustdoc cannot show it"
                    );
                }
                out.push_str(&rest[..=end]);
            }
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `crate::tour::module#anchor` for a link to a chapter `src/tour.rs` includes.
fn chapter_link(target: &str, modules: &[(String, String)]) -> Option<String> {
    let (file, anchor) = match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    };
    let file = file.strip_prefix("./").unwrap_or(file);
    let (_, module) = modules.iter().find(|(f, _)| f == file)?;
    Some(match anchor {
        Some(anchor) => format!("{module}#{anchor}"),
        None => module.clone(),
    })
}

/// The image file `target` (relative to `docs/tour/`) as an `<img>` with a
/// data URL; `None` if it is not an SVG or PNG file of this package.
fn inline_image(alt: &str, target: &str, tour: &Path, root: &Path) -> Option<String> {
    let mime = if target.ends_with(".svg") {
        "image/svg+xml"
    } else if target.ends_with(".png") {
        "image/png"
    } else {
        return None;
    };
    let path = tour.join(target);
    let bytes = fs::read(&path).ok()?;
    // Figures outside docs/tour (e.g. `../dispatch.svg`) are watched one by one.
    if let Ok(canonical) = path.canonicalize()
        && let Ok(tour) = tour.canonicalize()
        && !canonical.starts_with(&tour)
        && let Ok(relative) = canonical.strip_prefix(root.canonicalize().ok()?)
    {
        println!("cargo::rerun-if-changed={}", relative.display());
    }
    let alt = alt.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    Some(format!(
        "<img alt=\"{alt}\" title=\"{alt}\" style=\"max-width: 100%; height: auto\" src=\"data:{mime};base64,{}\">",
        base64(&bytes)
    ))
}

/// Standard base64 with padding (RFC 4648), for data URLs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
