//! The concept index's kernel and socket rows (`docs/tour/concepts.md`,
//! chapters 10, 16 and 17): each test shows one thing the kernel does, over
//! real loopback sockets, and fails if the row's claim were false. Linux
//! only (TCP_INFO, `/proc/net/tcp`, signalfd, epoll).
#![cfg(muxloop_linux)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common;
use muxloop::sys::{self, teaching as t};
use muxloop::{BlockingQueue, Dispatcher, Events, Interest, Mode};

fn tcp_pair() -> (TcpListener, TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (listener, client, server)
}

fn state(s: &impl AsFd) -> &'static str {
    t::tcp_state(s.as_fd()).unwrap()
}

/// Polls `cond` every 10 ms for at most 5 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `/proc/net/tcp` rows (IPv4) whose local port is `local` and remote port `remote`.
fn proc_rows(local: u16, remote: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let (l, r) = (format!(":{local:04X}"), format!(":{remote:04X}"));
    table
        .lines()
        .filter(|row| {
            let f: Vec<&str> = row.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&l) && f[2].ends_with(&r)
        })
        .map(str::to_owned)
        .collect()
}

// ---- TCP states, the handshake, the four-way close, TIME_WAIT ----

/// The kernel completes the handshake before `accept` (the client is
/// ESTABLISHED first); the four-way close walks FIN_WAIT2 / CLOSE_WAIT, then
/// the closer's socket is CLOSE while its TIME_WAIT lives on as a separate
/// entry in `/proc/net/tcp` (state 06), and `ss` lists it.
#[test]
fn handshake_and_four_way_close_walk_the_states() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(state(&listener), "LISTEN");
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert_eq!(state(&client), "ESTABLISHED", "handshake done before accept");
    let (server, _) = listener.accept().unwrap();
    assert_eq!(state(&server), "ESTABLISHED");
    server.shutdown(Shutdown::Write).unwrap();
    eventually("FIN_WAIT2 / CLOSE_WAIT", || state(&server) == "FIN_WAIT2" && state(&client) == "CLOSE_WAIT");
    client.shutdown(Shutdown::Write).unwrap();
    eventually("both CLOSE", || state(&server) == "CLOSE" && state(&client) == "CLOSE");
    let (sport, cport) = (server.local_addr().unwrap().port(), client.local_addr().unwrap().port());
    let rows = proc_rows(sport, cport);
    assert!(
        rows.iter().any(|r| r.split_whitespace().nth(3) == Some("06")),
        "TIME_WAIT for the closer: {rows:?}"
    );
    assert!(
        proc_rows(cport, sport).iter().all(|r| r.split_whitespace().nth(3) != Some("06")),
        "not for the other side"
    );
    if let Ok(out) = Command::new("ss").args(["-tan", "state", "time-wait"]).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        let needle = format!("127.0.0.1:{sport} ");
        assert!(
            text.lines().any(|l| l.contains(&needle) && l.contains(&format!(":{cport}"))),
            "ss lists it:\n{text}"
        );
    }
}

/// Port exhaustion in miniature: what must be unique is the 4-tuple. A
/// second socket bound to a client's port connects to the same server with
/// `EADDRNOTAVAIL` while the first connection lives; after the first closes
/// (its TIME_WAIT holds the tuple), `tcp_tw_reuse` (2, the default, means
/// loopback only) lets a new connect take the tuple over once the
/// timestamps clock has ticked (a second).
#[test]
fn a_four_tuple_is_unique_and_tw_reuse_takes_it_over() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = sys::RawAddr::from_inet(&listener.local_addr().unwrap());
    let bound_client = |port: u16| {
        let fd = sys::stream_socket(&server).unwrap();
        t::set_reuse_addr(fd.as_fd()).unwrap();
        sys::bind_raw(fd.as_fd(), &sys::RawAddr::from_inet(&SocketAddr::from(([127, 0, 0, 1], port))))
            .unwrap();
        fd
    };
    let first = bound_client(0);
    let port = sys::local_addr(first.as_fd()).unwrap().to_inet().unwrap().port();
    sys::set_nonblocking(first.as_fd(), false).unwrap();
    sys::connect_raw(first.as_fd(), &server).unwrap();
    let second = bound_client(port);
    let err = sys::start_connect(second.as_fd(), &server).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err}");
    let (accepted, _) = listener.accept().unwrap();
    sys::shutdown(first.as_fd(), Shutdown::Write).unwrap(); // the client closes first: TIME_WAIT is its
    accepted.shutdown(Shutdown::Write).unwrap();
    eventually("client in TIME_WAIT", || {
        proc_rows(port, listener.local_addr().unwrap().port())
            .iter()
            .any(|r| r.split_whitespace().nth(3) == Some("06"))
    });
    drop((first, accepted));
    let reuse = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse").unwrap();
    if reuse.trim() == "0" {
        eprintln!("tcp_tw_reuse is 0 here: no take-over to check");
        return;
    }
    std::thread::sleep(Duration::from_millis(2100));
    let third = bound_client(port);
    sys::set_nonblocking(third.as_fd(), false).unwrap();
    sys::connect_raw(third.as_fd(), &server).expect("tcp_tw_reuse lets the TIME_WAIT tuple be reused");
}

// ---- SO_LINGER > 0, SHUT_RD ----

/// `SO_LINGER` with a positive time: `close` waits (even on a non-blocking
/// socket) while the peer does not acknowledge, up to the time; then it
/// returns and Linux keeps sending in the background: nothing is dropped,
/// no RST. Without linger the same close returns at once.
#[test]
fn positive_linger_blocks_close_and_drops_nothing() {
    for linger in [None, Some(Duration::from_secs(1))] {
        let (_l, mut client, mut server) = tcp_pair();
        client.set_nonblocking(true).unwrap();
        let mut sent = 0;
        while let Ok(n) = client.write(&[7u8; 65536]) {
            sent += n;
        }
        sys::set_linger(client.as_fd(), linger).unwrap();
        let start = Instant::now();
        drop(client);
        let took = start.elapsed();
        match linger {
            Some(_) => {
                assert!(took >= Duration::from_millis(900), "close waited for the linger time: {took:?}")
            }
            None => assert!(took < Duration::from_millis(500), "close returned at once: {took:?}"),
        }
        server.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match server.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => panic!("after {got} of {sent} bytes ({linger:?}): {e}"),
            }
        }
        assert_eq!(got, sent, "every queued byte arrived, then EOF ({linger:?})");
    }
}

/// `shutdown(SHUT_RD)` on Linux sends nothing: data already queued is still
/// read, an empty queue then reads as EOF (0) instead of `WouldBlock`, and
/// the peer's later writes succeed and are queued (and readable) here.
#[test]
fn shut_rd_reads_eof_but_the_peer_still_sends() {
    let (_l, mut client, mut server) = tcp_pair();
    client.write_all(b"before").unwrap();
    eventually("6 bytes queued", || t::queued_bytes(server.as_fd()).unwrap().0 == 6);
    server.shutdown(Shutdown::Read).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(server.read(&mut buf).unwrap(), 6, "queued data is still read");
    server.set_nonblocking(true).unwrap();
    assert_eq!(server.read(&mut buf).unwrap(), 0, "an empty queue reads as EOF, not WouldBlock");
    assert_eq!(client.write(b"after").unwrap(), 5, "the peer is told nothing");
    eventually("5 more bytes queued", || t::queued_bytes(server.as_fd()).unwrap().0 == 5);
    assert_eq!((state(&server), state(&client)), ("ESTABLISHED", "ESTABLISHED"));
    assert_eq!(server.read(&mut buf).unwrap(), 5, "and they are readable");
}

// ---- keepalive's knobs ----

/// `TCP_KEEPIDLE`/`TCP_KEEPINTVL`/`TCP_KEEPCNT` replace the system's
/// timings for one socket, and the kernel arms the keepalive timer with the
/// idle time: `/proc/net/tcp` shows timer 02 (keepalive) with at most 7 s
/// (700 ticks of 1/100 s) to go, not the default two hours.
#[test]
fn keepalive_knobs_arm_the_timer() {
    let (_l, _client, server) = tcp_pair();
    let fd = server.as_fd();
    sys::set_keepalive(fd, true).unwrap();
    sys::set_keepalive_timing(fd, Duration::from_secs(7), Duration::from_secs(2), 3).unwrap();
    assert_eq!(sys::keepalive_timing(fd).unwrap(), (Duration::from_secs(7), Duration::from_secs(2), 3));
    let (local, peer) = (server.local_addr().unwrap().port(), server.peer_addr().unwrap().port());
    let rows = proc_rows(local, peer);
    let timer = rows[0].split_whitespace().nth(5).unwrap().to_owned(); // "tr:when"
    let (kind, when) = timer.split_once(':').unwrap();
    let when = u64::from_str_radix(when, 16).unwrap();
    assert_eq!(kind, "02", "the keepalive timer is armed: {timer}");
    assert!((300..=700).contains(&when), "at most 7 s to the first probe: {when} ticks");
}

// ---- connect failures, pending errors, send vs received ----

/// Refused: nothing listens, the peer's kernel answers the SYN with RST;
/// a non-blocking connect then polls as writable with POLLERR and the
/// pending error in `SO_ERROR`. A connect the listener cannot queue (its
/// accept queue full, backlog 0) is not refused: the SYN is dropped, the
/// client stays in SYN_SENT, and the only timeout is the caller's.
#[test]
fn connect_refused_and_connect_hanging_in_syn_sent() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let closed = sys::RawAddr::from_inet(&SocketAddr::from(([127, 0, 0, 1], port)));
    let fd = sys::stream_socket(&closed).unwrap();
    if sys::start_connect(fd.as_fd(), &closed).unwrap() {
        panic!("connected to a closed port");
    }
    let revents = t::poll_once(fd.as_fd(), libc::POLLOUT, 5000).unwrap();
    assert_ne!(revents & libc::POLLERR, 0, "a pending error makes the socket ready: {revents}");
    let err = sys::take_socket_error(fd.as_fd()).unwrap().expect("an error");
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));

    let listener = sys::tcp_listener(&"127.0.0.1:0".parse().unwrap(), false, 0).unwrap();
    let addr = sys::local_addr(listener.as_fd()).unwrap();
    let first = sys::stream_socket(&addr).unwrap();
    sys::start_connect(first.as_fd(), &addr).unwrap();
    eventually("first connected", || state(&first) == "ESTABLISHED");
    let second = sys::stream_socket(&addr).unwrap();
    sys::start_connect(second.as_fd(), &addr).unwrap();
    assert_eq!(t::poll_once(second.as_fd(), libc::POLLOUT, 500).unwrap(), 0, "not writable: not connected");
    assert_eq!(state(&second), "SYN_SENT");
}

/// A successful `send` means the bytes are in the kernel: here they even
/// reached the peer's kernel (acknowledged: 0 unacked here, 9 unread there),
/// and the peer application still never reads them: it resets, and the
/// sender learns only on its next call.
#[test]
fn send_succeeded_is_not_the_peer_read_it() {
    let (_l, mut client, server) = tcp_pair();
    assert_eq!(client.write(b"important").unwrap(), 9);
    eventually("acked by the peer's kernel", || {
        t::queued_bytes(client.as_fd()).unwrap().1 == 0 && t::queued_bytes(server.as_fd()).unwrap().0 == 9
    });
    sys::set_linger(server.as_fd(), Some(Duration::ZERO)).unwrap();
    drop(server);
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let err = client.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}

// ---- out-of-band data ----

/// `MSG_OOB`: the urgent byte makes the receiver "exceptional" (POLLPRI for
/// poll, exceptfds for select) until read apart with `MSG_OOB`; the ordinary
/// stream goes on without it, a read stopping at the mark.
#[test]
fn urgent_byte_is_pollpri_and_read_apart() {
    let (_l, mut client, mut server) = tcp_pair();
    client.write_all(b"ab").unwrap();
    eventually("ab queued", || t::queued_bytes(server.as_fd()).unwrap().0 == 2);
    assert_eq!(t::poll_once(server.as_fd(), libc::POLLPRI, 0).unwrap(), 0, "no urgent data yet");
    assert!(!t::select_exceptional(server.as_fd(), 0).unwrap());
    t::send_oob(client.as_fd(), b'!').unwrap();
    client.write_all(b"cd").unwrap();
    assert_ne!(t::poll_once(server.as_fd(), libc::POLLPRI, 5000).unwrap() & libc::POLLPRI, 0);
    assert!(t::select_exceptional(server.as_fd(), 5000).unwrap());
    assert_eq!(t::recv_oob(server.as_fd()).unwrap(), b'!');
    assert_eq!(
        t::poll_once(server.as_fd(), libc::POLLPRI, 0).unwrap() & libc::POLLPRI,
        0,
        "read: no longer urgent"
    );
    let mut stream = Vec::new();
    let mut buf = [0u8; 8];
    server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while stream.len() < 4 {
        let n = server.read(&mut buf).unwrap();
        stream.extend_from_slice(&buf[..n]);
    }
    assert_eq!(stream, b"abcd", "the stream without the urgent byte");
}

// ---- readiness conditions ----

/// `SO_RCVLOWAT`: readable only once 10 bytes are queued, for every backend
/// (each asks the socket's own poll function, which applies the mark).
fn rcvlowat_delays_readable<D: Dispatcher>() {
    let (_l, mut client, server) = tcp_pair();
    server.set_nonblocking(true).unwrap();
    sys::set_recv_lowat(server.as_fd(), 10).unwrap();
    let mut d = D::new().unwrap();
    let fd = server.as_raw_fd();
    d.register(fd, Interest::READABLE, Mode::Level).unwrap();
    let mut events = Events::with_capacity(4);
    client.write_all(b"12345").unwrap();
    eventually("5 bytes queued", || t::queued_bytes(server.as_fd()).unwrap().0 == 5);
    d.dispatch(&mut events, Some(Duration::from_millis(200))).unwrap();
    assert!(events.is_empty(), "5 bytes < low-water mark 10: not readable");
    client.write_all(b"67890").unwrap();
    d.dispatch(&mut events, Some(Duration::from_secs(5))).unwrap();
    assert!(events.iter().any(|e| e.fd() == fd && e.is_readable()), "10 bytes: readable");
    d.deregister(fd).unwrap();
}

for_each_dispatcher!(rcvlowat_delays_readable);

/// `SO_SNDLOWAT` cannot be set on Linux.
#[test]
fn sndlowat_is_not_settable_on_linux() {
    let (_l, client, _server) = tcp_pair();
    let err = t::set_send_lowat(client.as_fd(), 4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOPROTOOPT));
}

/// Signal-driven I/O: with `O_ASYNC` and this thread as owner, arriving
/// data raises `SIGIO` (read here from a signalfd, the signal blocked);
/// nothing before it.
#[test]
fn sigio_announces_arrival() {
    sys::block_signals(&[libc::SIGIO]).unwrap(); // this test's thread only
    let signals = sys::signalfd(None, &[libc::SIGIO]).unwrap().unwrap();
    let (_l, mut client, server) = tcp_pair();
    t::signal_this_thread_on_io(server.as_fd()).unwrap();
    let mut seen = Vec::new();
    sys::read_signalfd(signals.as_fd(), &mut seen).unwrap();
    assert!(seen.is_empty(), "no SIGIO before data: {seen:?}");
    client.write_all(b"hello").unwrap();
    assert_ne!(t::poll_once(signals.as_fd(), libc::POLLIN, 5000).unwrap(), 0, "SIGIO arrived");
    sys::read_signalfd(signals.as_fd(), &mut seen).unwrap();
    assert!(seen.iter().all(|r| r.signal == libc::SIGIO) && !seen.is_empty(), "{seen:?}");
    drop((client, server));
    sys::discard_pending_signal(libc::SIGIO).unwrap();
    sys::unblock_signals(&[libc::SIGIO]).unwrap();
}

// ---- epoll internals and the herd ----

fn fdinfo_targets(epfd: BorrowedFd<'_>) -> Vec<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", epfd.as_raw_fd())).unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("tfd:"))
        .map(|r| r.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// The interest tree holds one epitem per (file, fd) registered, listed in
/// `/proc/PID/fdinfo/EPFD`. An epitem belongs to the open *file*: closing
/// the registered fd while a `dup` keeps the file open leaves it in the
/// tree, still reporting events; closing the last reference removes it.
#[test]
fn epitems_live_with_the_file_not_the_fd() {
    let (_l, mut client, server) = tcp_pair();
    let ep = t::epoll_create().unwrap();
    let registered = server.as_raw_fd();
    t::epoll_add_readable(ep.as_fd(), server.as_fd(), false).unwrap();
    assert_eq!(fdinfo_targets(ep.as_fd()), vec![registered]);
    let twin = sys::dup(server.as_fd()).unwrap();
    drop(server); // fd `registered` is closed; the file lives on through `twin`
    assert_eq!(fdinfo_targets(ep.as_fd()), vec![registered], "still in the tree");
    client.write_all(b"x").unwrap();
    assert_eq!(t::epoll_wait_ready(ep.as_fd(), 5000).unwrap(), 1, "and still reported");
    drop(twin); // the file's last reference: eventpoll_release removes the epitem
    assert!(fdinfo_targets(ep.as_fd()).is_empty());
}

/// Four threads in `epoll_wait` on ONE epoll fd watching a listener; one
/// connection arrives and nobody accepts. Level-triggered: the entry goes
/// back on the ready list after each report and the next waiter is woken,
/// so all four return. Edge-triggered: one.
#[test]
fn one_epoll_fd_shared_by_threads_level_wakes_all_edge_wakes_one() {
    for edge in [false, true] {
        let ep = t::epoll_create().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        if edge {
            t::epoll_add_readable_edge(ep.as_fd(), listener.as_fd()).unwrap();
        } else {
            t::epoll_add_readable(ep.as_fd(), listener.as_fd(), false).unwrap();
        }
        let woken: usize = std::thread::scope(|s| {
            let waiters: Vec<_> =
                (0..4).map(|_| s.spawn(|| t::epoll_wait_ready(ep.as_fd(), 1500).unwrap())).collect();
            std::thread::sleep(Duration::from_millis(200));
            let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            waiters.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(woken, if edge { 1 } else { 4 }, "edge: {edge}");
    }
}

// ---- addresses, and looking at a running server ----

/// `INADDR_ANY` (0.0.0.0) with port 0: the kernel picks a free port from
/// `ip_local_port_range`; each accepted connection's local address is the
/// concrete one the client used.
#[test]
fn inaddr_any_and_port_zero() {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let bound = listener.local_addr().unwrap();
    assert!(bound.ip().is_unspecified());
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let (lo, hi): (u16, u16) = {
        let mut it = range.split_whitespace().map(|p| p.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    assert!((lo..=hi).contains(&bound.port()), "{bound} in {lo}-{hi}");
    let _client = TcpStream::connect(("127.0.0.1", bound.port())).unwrap();
    let (conn, _) = listener.accept().unwrap();
    assert_eq!(conn.local_addr().unwrap(), SocketAddr::from(([127, 0, 0, 1], bound.port())));
}

/// What `ss -ltnp` and `lsof` read: a listening socket is a row in
/// `/proc/net/tcp` (state 0A = LISTEN) whose inode is the `socket:[INODE]`
/// link of one of the process's fds in `/proc/PID/fd`. When the tools are
/// installed, they name this process on that port.
#[test]
fn ss_and_lsof_find_a_listening_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let link = std::fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
    let inode = link.to_string_lossy().trim_start_matches("socket:[").trim_end_matches(']').to_owned();
    let rows = proc_rows(port, 0);
    let row: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!((row[3], row[9]), ("0A", inode.as_str()), "{rows:?}");
    let pid = format!("pid={}", std::process::id());
    if let Ok(out) = Command::new("ss").args(["-ltnp", &format!("sport = :{port}")]).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&pid), "ss names this process:\n{text}");
    }
    if let Ok(out) = Command::new("lsof")
        .args(["-nP", "-a", "-p", &std::process::id().to_string(), &format!("-iTCP:{port}")])
        .output()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("(LISTEN)"), "lsof lists it:\n{text}");
    }
}

// ---- processes and threads ----

fn lab(args: &[&str]) -> String {
    let out = Command::new(common::example_binary("process_lab")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// An orphan (its parent exited first) is re-parented: to this lab's
/// process when it is a child subreaper, which then reaps it.
#[test]
fn orphan_goes_to_the_subreaper() {
    let out = lab(&["orphan", "--subreaper"]);
    let pid = out.lines().find_map(|l| l.strip_prefix("lab: pid ")).expect("lab pid").to_owned();
    assert!(out.contains(&format!("grandchild: parent now {pid} ")), "{out}");
    assert!(out.contains("lab: reaped Some(("), "{out}");
}

/// When `main` returns the process exits with every thread: a detached
/// thread's work is lost, a joined one finishes.
#[test]
fn a_detached_thread_dies_with_the_process_a_joined_one_finishes() {
    assert_eq!(lab(&["detach"]), "main: returning\n");
    assert_eq!(lab(&["join"]), "thread: done\nmain: returning\n");
}

// ---- a worker pool fed by a blocking queue ----

/// Each job is taken exactly once by some worker; a worker on an empty
/// queue sleeps until a push; the queue never holds more than its capacity
/// (a producer sleeps while it is full, `try_push` refuses); `close` wakes
/// every sleeper with `None`.
#[test]
fn blocking_queue_feeds_workers_each_job_once() {
    let queue = BlockingQueue::new(8);
    let full = BlockingQueue::new(2);
    assert!(full.try_push(1).is_ok() && full.try_push(2).is_ok());
    assert_eq!(full.try_push(3), Err(3), "full: refused, the job given back");
    assert_eq!(full.len(), 2);
    let taken = std::sync::Mutex::new(Vec::new());
    let most = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    while let Some(job) = queue.pop() {
                        most.fetch_max(queue.len() + 1, std::sync::atomic::Ordering::Relaxed);
                        taken.lock().unwrap().push(job);
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        assert!(workers.iter().all(|w| !w.is_finished()), "asleep on the empty queue");
        for job in 0..1000 {
            assert!(queue.push(job).is_ok());
            assert!(queue.len() <= 8, "never more than the capacity");
        }
        queue.close();
        assert_eq!(queue.push(1000), Err(1000), "closed: refused");
        for w in workers {
            w.join().unwrap();
        }
    });
    let mut taken = taken.into_inner().unwrap();
    taken.sort_unstable();
    assert_eq!(taken, (0..1000).collect::<Vec<_>>());
    assert!(most.into_inner() <= 9, "a worker saw more queued than the capacity");
}
