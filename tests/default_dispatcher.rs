//! The compile-time default follows the features, with the priority
//! select > poll > epoll. `.ci/run` runs this once per feature set.

#[test]
fn default_dispatcher_matches_the_features() {
    let expected = if cfg!(feature = "select") {
        "select"
    } else if cfg!(feature = "poll") {
        "poll"
    } else {
        "epoll" // the default feature, and what a Linux build falls back to
    };
    assert_eq!(muxloop::default_dispatcher_name(), expected);
    assert_eq!(<muxloop::DefaultDispatcher as muxloop::Dispatcher>::NAME, expected);
    let ev: muxloop::EventLoop = muxloop::EventLoop::new().unwrap();
    assert_eq!(ev.dispatcher_name(), expected, "EventLoop's default type parameter is DefaultDispatcher");
}
