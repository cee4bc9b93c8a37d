//! `examples/herd.rs` runs and its counts are consistent: every connection is
//! accepted exactly once, by some waiter, on every dispatcher. (The
//! `processes` strategy re-executes the herd binary, so it is run by hand.)

#[allow(dead_code)]
#[path = "../../examples/herd.rs"]
mod example;

use muxloop::Dispatcher;

fn consistent<D: Dispatcher + 'static>() {
    const K: usize = 200;
    const N: usize = 3;
    for strategy in ["shared", "exclusive", "reuseport"] {
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

for_each_dispatcher!(consistent);
