//! What makes a socket "ready", watched one condition at a time (Linux):
//! each subcommand builds a loopback pair and asks the kernel.
//!
//! ```text
//! cargo run --example readiness_lab -- lowat      # SO_RCVLOWAT: readable only from N bytes
//! cargo run --example readiness_lab -- oob        # MSG_OOB: POLLPRI, select's exceptfds
//! cargo run --example readiness_lab -- sigio      # signal-driven I/O: SIGIO on arrival
//! cargo run --example readiness_lab -- keepalive  # TCP_KEEPIDLE/INTVL/CNT and the armed timer
//! cargo run --example readiness_lab -- herd       # 4 threads on one epoll fd: level vs edge
//! cargo run --example readiness_lab -- tree       # the interest tree in /proc/self/fdinfo
//! ```
//!
//! What to try, what to watch: in `lowat` the 5 bytes sent first do not make
//! the socket readable (revents 0), the 10th byte does. In `oob` the urgent
//! byte is reported as POLLPRI (2) and in select's exceptfds, is read apart,
//! and is missing from the ordinary stream. In `herd`, level-triggered wakes
//! all 4 waiters for one unaccepted connection, edge-triggered wakes 1.

#[cfg(muxloop_linux)]
fn main() -> std::io::Result<()> {
    use muxloop::sys::{self, teaching as t};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsFd, AsRawFd};
    use std::time::Duration;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    let pause = || std::thread::sleep(Duration::from_millis(100));
    match std::env::args().nth(1).as_deref().unwrap_or("lowat") {
        "lowat" => {
            sys::set_recv_lowat(server.as_fd(), 10)?;
            client.write_all(b"12345")?;
            pause();
            println!("5 bytes queued: revents {}", t::poll_once(server.as_fd(), libc::POLLIN, 200)?);
            client.write_all(b"67890")?;
            println!(
                "10 bytes queued: revents {} (POLLIN = 1)",
                t::poll_once(server.as_fd(), libc::POLLIN, 2000)?
            );
            let err = t::set_send_lowat(server.as_fd(), 10);
            println!("setting SO_SNDLOWAT: {err:?}");
        }
        "oob" => {
            client.write_all(b"ab")?;
            t::send_oob(client.as_fd(), b'!')?;
            client.write_all(b"cd")?;
            pause();
            let revents = t::poll_once(server.as_fd(), libc::POLLIN | libc::POLLPRI, 1000)?;
            println!(
                "revents {revents} (POLLIN 1 | POLLPRI 2); select exceptfds: {}",
                t::select_exceptional(server.as_fd(), 1000)?
            );
            println!("recv(MSG_OOB): {:?}", t::recv_oob(server.as_fd()).map(char::from));
            let mut buf = [0u8; 8];
            let mut got = Vec::new();
            while got.len() < 4 {
                let n = server.read(&mut buf)?; // stops at the urgent mark: two reads
                got.extend_from_slice(&buf[..n]);
                println!("read {n}: {:?}", String::from_utf8_lossy(&buf[..n]));
            }
        }
        "sigio" => {
            sys::block_signals(&[libc::SIGIO])?; // this thread takes SIGIO from a signalfd
            let signals = sys::signalfd(None, &[libc::SIGIO])?.expect("a new signalfd");
            t::signal_this_thread_on_io(server.as_fd())?;
            let mut seen = Vec::new();
            sys::read_signalfd(signals.as_fd(), &mut seen)?;
            println!("before any data: {} SIGIO", seen.len());
            client.write_all(b"hello")?;
            t::poll_once(signals.as_fd(), libc::POLLIN, 2000)?;
            sys::read_signalfd(signals.as_fd(), &mut seen)?;
            println!(
                "after 5 bytes: {} SIGIO; now read non-blocking: {} bytes",
                seen.len(),
                server.read(&mut [0u8; 16])?
            );
        }
        "keepalive" => {
            println!("system defaults (idle, interval, count): {:?}", sys::keepalive_timing(server.as_fd())?);
            sys::set_keepalive(server.as_fd(), true)?;
            sys::set_keepalive_timing(server.as_fd(), Duration::from_secs(7), Duration::from_secs(2), 3)?;
            println!("this socket: {:?}", sys::keepalive_timing(server.as_fd())?);
            let port = format!(":{:04X} ", server.local_addr()?.port());
            let peer = format!(":{:04X} ", server.peer_addr()?.port());
            let table = std::fs::read_to_string("/proc/net/tcp")?;
            let row = table.lines().find(|l| {
                l.split_whitespace().nth(1).is_some_and(|a| a.ends_with(port.trim())) && l.contains(&peer)
            });
            println!(
                "/proc/net/tcp row (tr 02 = keepalive timer, then jiffies left): {}",
                row.unwrap_or("?").trim()
            );
        }
        "herd" => {
            for edge in [false, true] {
                let ep = t::epoll_create()?;
                let l = TcpListener::bind("127.0.0.1:0")?;
                if edge {
                    t::epoll_add_readable_edge(ep.as_fd(), l.as_fd())?
                } else {
                    t::epoll_add_readable(ep.as_fd(), l.as_fd(), false)?
                }
                let woken: usize = std::thread::scope(|s| {
                    let waiters: Vec<_> =
                        (0..4).map(|_| s.spawn(|| t::epoll_wait_ready(ep.as_fd(), 1000).unwrap())).collect();
                    std::thread::sleep(Duration::from_millis(200)); // all 4 asleep in epoll_wait
                    let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap(); // never accepted
                    waiters.into_iter().map(|w| w.join().unwrap()).sum()
                });
                println!(
                    "{}: {woken} of 4 waiters woke for one connection",
                    if edge { "edge" } else { "level" }
                );
            }
        }
        "tree" => {
            let ep = t::epoll_create()?;
            t::epoll_add_readable(ep.as_fd(), server.as_fd(), false)?;
            t::epoll_add_readable(ep.as_fd(), listener.as_fd(), false)?;
            print!("{}", std::fs::read_to_string(format!("/proc/self/fdinfo/{}", ep.as_raw_fd()))?);
            println!("(one tfd line per epitem: fd {} and fd {})", server.as_raw_fd(), listener.as_raw_fd());
        }
        other => {
            eprintln!(
                "error: unknown experiment {other:?} (expected one of: lowat, oob, sigio, keepalive, herd, tree)"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}

#[cfg(not(muxloop_linux))]
fn main() {
    eprintln!("readiness_lab needs Linux (signalfd, TCP_KEEPIDLE, epoll)");
}
