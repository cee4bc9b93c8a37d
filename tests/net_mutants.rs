//! Small, exact tests that kill mutants `cargo mutants` found surviving the
//! socket suites (`tcp_suite`, `udp_suite`, `unix_datagram`, `pipe_reader`,
//! `faults`, ...): see `docs/mutants.md` for each one and its mutant.

mod common;

use std::io;

use muxloop::{DatagramOptions, EventLoop, Interest, PollDispatcher, UdpSocket, UnixDatagram};

/// `options()` gives back what the socket was opened with, and `Debug` names
/// the socket, its fd and its addresses.
#[test]
fn datagram_socket_reports_its_options_and_itself() {
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let options = DatagramOptions { recv_batch: 3, recv_budget: 7, ..DatagramOptions::default() };
    let sock = UdpSocket::bind_with(&mut ev, "127.0.0.1:0", options, |_, _, _| {}).unwrap();
    let got = sock.options();
    assert_eq!((got.recv_batch, got.recv_budget), (3, 7));
    assert_eq!(got.max_datagram, DatagramOptions::default().max_datagram);
    let text = format!("{sock:?}");
    let port = sock.local_addr().port();
    assert!(
        text.starts_with("DatagramSocket")
            && text.contains(&format!("fd: {}", sock.fd()))
            && text.contains(&port.to_string()),
        "{text}"
    );
    assert!(text.contains("closed: false"), "{text}");
}

/// The send queue's byte bound is inclusive: datagrams that fill it exactly
/// are queued, one byte more is refused (`WouldBlock`) and counted.
#[test]
fn datagram_send_queue_byte_bound_is_exact() {
    const BYTES: usize = 1000;
    let mut ev = EventLoop::<PollDispatcher>::new().unwrap();
    let options = DatagramOptions::new().send_queue(1000, BYTES);
    let (sender, receiver) = UnixDatagram::pair_with(&mut ev, options, |_, _, _| {}, |_, _, _| {}).unwrap();
    ev.set_interest(receiver.fd(), Interest::NONE).unwrap(); // never reads
    // Fill the kernel until the first datagram has to wait in the queue.
    let mut sent = 0;
    while sender.stats().queued == 0 {
        sender.send(&mut ev, &[1; 100]).unwrap();
        sent += 1;
        assert!(sent < 100_000, "the kernel never pushed back");
    }
    let queued = sender.stats();
    assert_eq!(queued.queued, 1);
    sender.send(&mut ev, &vec![2; BYTES - 200]).unwrap();
    sender.send(&mut ev, &[3; 100]).unwrap(); // exactly BYTES queued now
    assert_eq!(sender.stats().queued, 3);
    let err = sender.send(&mut ev, &[4]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    assert!(err.to_string().contains("send queue full"), "{err}");
    assert_eq!((sender.stats().queued, sender.stats().dropped), (3, 1));
}
