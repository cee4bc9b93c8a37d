//! After 2,000 connect/close cycles, the process has exactly the fds it had
//! before: every accepted socket was closed. (Its own test binary, so no
//! other test opens fds at the same time.)

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
#[cfg(muxloop_has_epoll)]
use muxloop::EpollDispatcher;
use muxloop::{Dispatcher, PollDispatcher, SelectDispatcher, sys};

fn cycles_leak_nothing<D: Dispatcher + 'static>() {
    let before_server = sys::open_fd_count().unwrap();
    let mut server = spawn_server::<D, _>(echo_callbacks(), 2);
    // Every fd the server keeps (listener, spare, loops' wakers) exists once spawn_server returns.
    let with_server = sys::open_fd_count().unwrap();
    for i in 0..2000u32 {
        let mut stream = connect(server.addr);
        stream.write_all(&i.to_le_bytes()).unwrap();
        assert_eq!(read_up_to(&mut stream, 4), i.to_le_bytes(), "cycle {i}");
    }
    let settled = wait_until(Duration::from_secs(10), || sys::open_fd_count().unwrap() == with_server);
    assert!(
        settled,
        "{}: {} fds open after the cycles, {with_server} before",
        D::NAME,
        sys::open_fd_count().unwrap()
    );
    server.stop();
    drop(server); // its loop handle keeps the (stopped) loop's waker fd alive
    assert_eq!(
        sys::open_fd_count().unwrap(),
        before_server,
        "{}: the stopped server left fds behind",
        D::NAME
    );
}

#[test]
fn connect_close_cycles_leak_no_fds() {
    cycles_leak_nothing::<SelectDispatcher>();
    cycles_leak_nothing::<PollDispatcher>();
    #[cfg(muxloop_has_epoll)]
    cycles_leak_nothing::<EpollDispatcher>();
}
