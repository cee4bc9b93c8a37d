//! The compile-time default follows the features, with the priority
//! select > poll > uring > epoll (and poll where the build has no epoll: not
//! Linux, or `RUSTFLAGS="--cfg muxloop_portable"`, which this test reads
//! itself rather than trusting build.rs's own cfgs).
//! `.ci/run` runs this once per feature set:
//! `cargo test --test default_dispatcher [--features select | --features uring | --no-default-features --features poll]`.
//! It is a small test crate of its own for that reason: CI rebuilds it for
//! each backend feature, and rebuilding a large suite each time would cost
//! minutes for nothing.

use muxloop::{DefaultDispatcher, Dispatcher, EventLoop, Mode};

/// What `build.rs` is documented to pick for the features this test was built with.
fn expected() -> &'static str {
    if cfg!(feature = "select") {
        "select"
    } else if cfg!(feature = "poll") {
        "poll"
    } else if cfg!(all(feature = "uring", target_os = "linux", not(muxloop_portable))) {
        "uring"
    } else if cfg!(all(any(target_os = "linux", target_os = "android"), not(muxloop_portable))) {
        "epoll" // the default feature (and what a build with no backend feature gets)
    } else {
        "poll" // epoll asked for, but the build has none
    }
}

#[test]
fn default_dispatcher_matches_the_features() {
    let expected = expected();
    assert_eq!(muxloop::default_dispatcher_name(), expected);
    assert_eq!(<DefaultDispatcher as Dispatcher>::NAME, expected);
    let ev: EventLoop = EventLoop::new().unwrap();
    assert_eq!(ev.dispatcher_name(), expected, "EventLoop's default type parameter is DefaultDispatcher");
}

#[test]
fn default_dispatcher_capabilities_match_its_name() {
    let edge = matches!(expected(), "epoll" | "uring");
    let d = DefaultDispatcher::new().unwrap();
    assert_eq!(d.name(), expected());
    assert_eq!(d.supports(Mode::Edge), edge);
    assert!(d.supports(Mode::Level) && d.supports(Mode::Oneshot));
}
