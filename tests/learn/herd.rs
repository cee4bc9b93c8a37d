//! `examples/herd.rs` runs and its counts are consistent: every connection is
//! accepted exactly once, by some waiter, on every dispatcher, and under
//! nginx's accept mutex no wake-up finds the queue empty. (The `processes`
//! strategy re-executes the herd binary, so it is run by hand.)

#[allow(dead_code)]
#[path = "../../examples/herd.rs"]
mod example;

use muxloop::Dispatcher;

fn consistent<D: Dispatcher + 'static>() {
    const K: usize = 200;
    const N: usize = 3;
    for strategy in ["shared", "exclusive", "mutex", "reuseport"] {
        let s = example::measure::<D>(strategy, N, K).expect(strategy);
        assert_eq!(s.accepted, K, "{strategy}: {s:?}");
        assert_eq!(s.matched, K, "{strategy}: every accepted port was a client's: {s:?}");
        assert_eq!(s.per_waiter.len(), N);
        assert_eq!(s.per_waiter.iter().sum::<usize>(), K);
        assert_eq!(s.wakeups, s.accepted as u64 + s.eagain, "{strategy}: one accept per wake-up: {s:?}");
        assert!(s.p50 <= s.p99);
    }
    let err = example::measure::<D>("nonsense", N, K).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// `--strategy mutex`: only the waiter holding the lock has the listener in
/// its loop, so every wake-up that reaches user space finds a connection: as
/// many wake-ups as accepts, no `EAGAIN`. (With every loop watching it, as in
/// `shared`, some wake-ups find the queue already emptied, though not on every
/// run: `watchers` catches that case for sure.)
fn accept_mutex_wakes_only_the_holder<D: Dispatcher + 'static>() {
    const K: usize = 200;
    const N: usize = 3;
    let s = example::measure::<D>("mutex", N, K).expect("mutex");
    assert_eq!(s.accepted, K, "{s:?}");
    assert_eq!(s.matched, K, "every accepted port was a client's: {s:?}");
    assert_eq!(s.per_waiter.iter().sum::<usize>(), K);
    assert_eq!(s.watchers, 1, "only the holder has the listener in its loop: {s:?}");
    assert_eq!(s.eagain, 0, "a wake-up found the queue empty: {s:?}");
    assert_eq!(s.wakeups, K as u64, "one wake-up per connection: {s:?}");
}

for_each_dispatcher!(consistent, accept_mutex_wakes_only_the_holder);
