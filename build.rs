//! Picks the compile-time default dispatcher, the way yolanda's CMake file
//! does `check_symbol_exists(epoll_create ...)` and defines `EPOLL_ENABLE`.
//!
//! Features only choose which backend becomes `DefaultDispatcher`; all four
//! are compiled on Linux whatever is chosen, so features stay additive.
//! Priority: `select` > `poll` > `uring` > `epoll`. If epoll (or io_uring)
//! is wanted but the target has none, fall back (to epoll or poll) and say so.

use std::env;

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(muxloop_dispatcher, values(\"select\", \"poll\", \"uring\", \"epoll\"))"
    );
    println!("cargo::rustc-check-cfg=cfg(muxloop_has_epoll)");
    println!("cargo::rerun-if-changed=build.rs");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let has_epoll = matches!(target_os.as_str(), "linux" | "android");
    let has_uring = target_os == "linux";
    let feature = |name: &str| env::var_os(format!("CARGO_FEATURE_{}", name.to_uppercase())).is_some();

    let chosen = if feature("select") {
        "select"
    } else if feature("poll") {
        "poll"
    } else if feature("uring") && has_uring {
        "uring"
    } else if has_epoll {
        if feature("uring") {
            println!("cargo::warning=muxloop: io_uring is Linux-only (target_os={target_os}); using epoll");
        }
        "epoll"
    } else {
        if feature("epoll") {
            println!(
                "cargo::warning=muxloop: epoll is not available on target_os={target_os}; \
                 falling back to the poll dispatcher"
            );
        }
        "poll"
    };

    if has_epoll {
        println!("cargo::rustc-cfg=muxloop_has_epoll");
    }
    println!("cargo::rustc-cfg=muxloop_dispatcher=\"{chosen}\"");
}
