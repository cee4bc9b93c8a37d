//! A handler deregisters and closes fd X, which is also ready in the same
//! batch, and a new socket reuses number X and is registered: the batch's old
//! event for X must not reach the new owner. (Its own test binary, so no
//! other test takes the freed fd number first.)

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use muxloop::{
    Dispatcher, EpollDispatcher, EventLoop, Interest, Mode, PollDispatcher, SelectDispatcher, sys,
};

fn stale_event_is_dropped<D: Dispatcher + 'static>() {
    let mut ev = EventLoop::<D>::new().unwrap();
    let (a, a_peer) = sys::socketpair().unwrap();
    let (b, b_peer) = sys::socketpair().unwrap();
    let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
    let sockets: Rc<RefCell<HashMap<RawFd, OwnedFd>>> =
        Rc::new(RefCell::new(HashMap::from([(fa, a), (fb, b)])));
    let old_runs = Rc::new(Cell::new(0));
    let new_runs = Rc::new(Cell::new(0));
    let new_peer: Rc<RefCell<Option<OwnedFd>>> = Rc::default();
    for (me, other) in [(fa, fb), (fb, fa)] {
        let (sockets, old_runs, new_runs, new_peer) =
            (Rc::clone(&sockets), Rc::clone(&old_runs), Rc::clone(&new_runs), Rc::clone(&new_peer));
        ev.register(me, Interest::READABLE, Mode::Level, move |ev, _| {
            old_runs.set(old_runs.get() + 1);
            sys::read(me, &mut [0u8; 16]).unwrap();
            // Whichever runs first replaces the other with a new socket on the same number.
            ev.deregister(other).unwrap();
            drop(sockets.borrow_mut().remove(&other));
            let (new, peer) = sys::socketpair().unwrap();
            assert_eq!(new.as_raw_fd(), other, "the kernel reuses the lowest free number");
            let runs = Rc::clone(&new_runs);
            ev.register(other, Interest::READABLE, Mode::Level, move |_, event| {
                runs.set(runs.get() + 1);
                sys::read(event.fd(), &mut [0u8; 16]).unwrap();
            })
            .unwrap();
            sockets.borrow_mut().insert(other, new);
            *new_peer.borrow_mut() = Some(peer);
        })
        .unwrap();
    }
    sys::write(a_peer.as_raw_fd(), b"1").unwrap();
    sys::write(b_peer.as_raw_fd(), b"2").unwrap();
    assert_eq!(
        ev.run_once(Some(Duration::from_secs(5))).unwrap(),
        1,
        "{}: only the first handler ran",
        D::NAME
    );
    assert_eq!((old_runs.get(), new_runs.get()), (1, 0), "{}: the stale event was dropped", D::NAME);
    ev.run_once(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(new_runs.get(), 0, "{}: the new socket has no data", D::NAME);
    sys::write(new_peer.borrow().as_ref().unwrap().as_raw_fd(), b"3").unwrap();
    ev.run_once(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(new_runs.get(), 1, "{}: new data reaches the new handler", D::NAME);
    for fd in sockets.borrow().keys() {
        ev.deregister(*fd).unwrap();
    }
}

#[test]
fn reused_fd_number_gets_no_stale_event() {
    stale_event_is_dropped::<SelectDispatcher>();
    stale_event_is_dropped::<PollDispatcher>();
    stale_event_is_dropped::<EpollDispatcher>();
}
