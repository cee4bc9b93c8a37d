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

use std::env;

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
}
