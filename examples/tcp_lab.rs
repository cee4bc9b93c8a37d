//! The TCP lifecycle, watched from the kernel's side (Linux): one subcommand
//! per experiment, each on loopback, each printing what the kernel says.
//!
//! ```text
//! cargo run --example tcp_lab -- states     # handshake, four-way close, TIME_WAIT
//! cargo run --example tcp_lab -- linger 2   # SO_LINGER 2 s: close blocks, nothing is dropped
//! cargo run --example tcp_lab -- shut-rd    # shutdown(SHUT_RD): EOF here, the peer may still send
//! cargo run --example tcp_lab -- unacked    # "send succeeded" is not "the peer read it"
//! cargo run --example tcp_lab -- connect    # refused, and a connect that hangs in SYN_SENT
//! cargo run --example tcp_lab -- port0      # INADDR_ANY and port 0
//! ```
//!
//! What to try, what to watch: `states` ends with the closer's 4-tuple in
//! TIME_WAIT; run `ss -tan state time-wait` within 60 s and find it. In
//! `linger`, the close takes the linger time because the peer never reads;
//! when it runs out Linux returns from `close` and keeps sending: the peer
//! then reads every queued byte and EOF (no RST, nothing dropped, whatever
//! older texts say). In `connect`,
//! a listener with backlog 0 and one unaccepted connection drops the next
//! SYN: that client sits in SYN_SENT, its only timeout the one it sets.

#[cfg(muxloop_linux)]
fn main() -> std::io::Result<()> {
    use muxloop::sys::{
        self,
        teaching::{queued_bytes, tcp_state},
    };
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::{Duration, Instant};
    let st = |s: &TcpStream| tcp_state(s.as_fd()).unwrap();
    let pause = || std::thread::sleep(Duration::from_millis(100));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let which = std::env::args().nth(1).unwrap_or_else(|| "states".into());
    match which.as_str() {
        "states" => {
            println!("listener: {}", tcp_state(listener.as_fd())?);
            let client = TcpStream::connect(addr)?; // SYN, SYN-ACK, ACK: done by the kernels
            println!("client after connect(), before accept(): {}", st(&client));
            let (server, _) = listener.accept()?;
            println!("server after accept(): {}", st(&server));
            server.shutdown(Shutdown::Write)?; // FIN 1 ->, <- ACK
            pause();
            println!("server sent FIN: server {}, client {}", st(&server), st(&client));
            client.shutdown(Shutdown::Write)?; // <- FIN 2, ACK ->
            pause();
            println!("client sent FIN: server {}, client {}", st(&server), st(&client));
            let port = client.local_addr()?.port();
            let tw = std::fs::read_to_string("/proc/net/tcp")?;
            let row =
                tw.lines().find(|l| l.contains(&format!(":{:04X} 0100007F:{port:04X} 06", addr.port())));
            println!("/proc/net/tcp TIME_WAIT row: {}", row.map_or("none", str::trim));
            println!("see it: ss -tan state time-wait '( sport = :{} )'", addr.port());
        }
        "linger" => {
            let secs: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2);
            let mut client = TcpStream::connect(addr)?;
            let (mut server, _) = listener.accept()?;
            sys::set_nonblocking(client.as_fd(), true)?;
            let mut sent = 0;
            while let Ok(n) = client.write(&[7u8; 65536]) {
                sent += n; // until both kernels' buffers are full: the peer never reads
            }
            println!("queued {sent} bytes; the peer reads nothing");
            sys::set_linger(client.as_fd(), Some(Duration::from_secs(secs)))?;
            let t = Instant::now();
            drop(client); // close(): waits up to the linger time for the data to be acked
            println!("close() took {:.1?} (non-blocking socket or not)", t.elapsed());
            let mut buf = vec![0u8; 1 << 20];
            let mut got = 0;
            let end = loop {
                match server.read(&mut buf) {
                    Ok(0) => break "EOF".to_string(),
                    Ok(n) => got += n,
                    Err(e) => break e.to_string(),
                }
            };
            println!("peer read {got} bytes, then: {end}");
        }
        "shut-rd" => {
            let mut client = TcpStream::connect(addr)?;
            let (mut server, _) = listener.accept()?;
            client.write_all(b"before")?;
            pause();
            server.shutdown(Shutdown::Read)?;
            let mut buf = [0u8; 16];
            println!("server read after SHUT_RD: {:?}", server.read(&mut buf));
            println!("server read again: {:?}", server.read(&mut buf));
            println!("client write after: {:?}", client.write(b"after"));
            pause();
            println!(
                "server state {}, client state {}; unread at server {}",
                st(&server),
                st(&client),
                queued_bytes(server.as_fd())?.0
            );
        }
        "unacked" => {
            let mut client = TcpStream::connect(addr)?;
            let (server, _) = listener.accept()?;
            println!("client send: {:?}", client.write(b"important"));
            pause();
            let (unread, _) = queued_bytes(server.as_fd())?;
            println!("in the peer's kernel, unread by the peer: {unread} bytes");
            sys::set_linger(server.as_fd(), Some(Duration::ZERO))?;
            drop(server); // the peer application dies without reading
            pause();
            let mut buf = [0u8; 16];
            println!("client's next read: {:?}", client.read(&mut buf).map_err(|e| e.to_string()));
        }
        "connect" => {
            let port = addr.port();
            drop(listener); // nothing listens on this port any more
            println!(
                "refused: {:?}",
                TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).map_err(|e| e.to_string())
            );
            let full = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let fd = sys::tcp_listener(&full, false, 0)?; // backlog 0: one queued connection fits
            let addr = sys::RawAddr::from_inet(&sys::local_addr(fd.as_fd())?.to_inet()?);
            let first = sys::stream_socket(&addr)?;
            sys::start_connect(first.as_fd(), &addr)?;
            pause();
            let second = sys::stream_socket(&addr)?;
            sys::start_connect(second.as_fd(), &addr)?;
            let revents = sys::teaching::poll_once(second.as_fd(), libc::POLLOUT, 500)?;
            println!(
                "first: {}; second after 500 ms: {} (revents {revents})",
                tcp_state(first.as_fd())?,
                tcp_state(second.as_fd())?
            );
        }
        "port0" => {
            let any = TcpListener::bind("0.0.0.0:0")?;
            let port = any.local_addr()?.port();
            println!(
                "bound to {} (ephemeral range: {})",
                any.local_addr()?,
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")?.trim()
            );
            let _c = TcpStream::connect(("127.0.0.1", port))?;
            let (conn, _) = any.accept()?;
            println!("accepted connection's local address: {}", conn.local_addr()?);
        }
        other => {
            eprintln!(
                "error: unknown experiment {other:?} (expected one of: states, linger, shut-rd, unacked, connect, port0)"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}

#[cfg(not(muxloop_linux))]
fn main() {
    eprintln!("tcp_lab needs Linux (TCP_INFO, SIOCOUTQ)");
}
