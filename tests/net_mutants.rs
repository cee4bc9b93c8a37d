//! Small, exact tests that kill mutants `cargo mutants` found surviving the
//! socket suites (`tcp_suite`, `udp_suite`, `unix_datagram`, `pipe_reader`,
//! `faults`, ...): see `docs/mutants.md` for each one and its mutant.

mod common;

use muxloop::{DatagramOptions, EventLoop, PollDispatcher, UdpSocket};

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
