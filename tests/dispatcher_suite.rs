use muxloop::*;
use std::os::fd::AsRawFd;
use std::time::Duration;
fn show<D: Dispatcher>() {
    let mut d = D::new().unwrap();
    let mut ev = Events::with_capacity(8);
    // socketpair peer closed
    let (a, b) = sys::socketpair().unwrap();
    d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    drop(b);
    d.dispatch(&mut ev, Some(Duration::from_millis(10))).unwrap();
    println!("{} sp peer closed R: {:?}", D::NAME, ev.iter().collect::<Vec<_>>());
    d.modify(a.as_raw_fd(), Interest::WRITABLE, Mode::Level).unwrap();
    d.dispatch(&mut ev, Some(Duration::from_millis(10))).unwrap();
    println!("{} sp peer closed W: {:?}", D::NAME, ev.iter().collect::<Vec<_>>());
    d.deregister(a.as_raw_fd()).unwrap();
    // half close
    let (a, b) = sys::socketpair().unwrap();
    d.register(a.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    sys::shutdown(b.as_raw_fd(), std::net::Shutdown::Write).unwrap();
    d.dispatch(&mut ev, Some(Duration::from_millis(10))).unwrap();
    println!("{} sp half closed R: {:?}", D::NAME, ev.iter().collect::<Vec<_>>());
    d.deregister(a.as_raw_fd()).unwrap();
    // pipe writer closed
    let (r, w) = sys::pipe().unwrap();
    d.register(r.as_raw_fd(), Interest::READABLE, Mode::Level).unwrap();
    drop(w);
    d.dispatch(&mut ev, Some(Duration::from_millis(10))).unwrap();
    println!("{} pipe writer closed: {:?}", D::NAME, ev.iter().collect::<Vec<_>>());
    d.deregister(r.as_raw_fd()).unwrap();
    let (r, w) = sys::pipe().unwrap();
    d.register(w.as_raw_fd(), Interest::WRITABLE, Mode::Level).unwrap();
    drop(r);
    d.dispatch(&mut ev, Some(Duration::from_millis(10))).unwrap();
    println!(
        "{} pipe reader closed: {:?} write={:?}",
        D::NAME,
        ev.iter().collect::<Vec<_>>(),
        sys::write(w.as_raw_fd(), b"x").map_err(|e| e.kind())
    );
    d.deregister(w.as_raw_fd()).unwrap();
    println!("{} deregister not-open: {:?}", D::NAME, d.deregister(900_000).map_err(|e| e.kind()));
    println!(
        "{} modify not-open: {:?}",
        D::NAME,
        d.modify(900_000, Interest::READABLE, Mode::Level).map_err(|e| e.kind())
    );
}
#[test]
fn explore() {
    show::<SelectDispatcher>();
    show::<PollDispatcher>();
    show::<EpollDispatcher>();
}
