//! The README's first code snippet, compiled and run: an echo server with a
//! typed [`Handler`] on a backend chosen by name. `snippet_matches_readme`
//! fails when the README's copy and this one drift apart.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// The snippet, verbatim but for the address (`addr` here,
/// `"127.0.0.1:9000"` in the README) and the indentation.
fn readme_snippet(addr: &str) -> Result<(), Box<dyn Error>> {
    // README snippet begins
    use muxloop::{AnyDispatcher, Buffer, Connection, EventLoop, Handler, Server};

    /// One per connection, owned by its loop: plain fields, no locks.
    struct Echo {
        bytes: u64,
    }

    impl Handler<AnyDispatcher> for Echo {
        fn on_message(
            &mut self,
            ev: &mut EventLoop<AnyDispatcher>,
            conn: &Connection<AnyDispatcher>,
            input: &mut Buffer,
        ) {
            self.bytes += input.len() as u64;
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        }
    }

    let mut ev = EventLoop::<AnyDispatcher>::with_backend("poll")?;
    let factory = |_: &Connection<AnyDispatcher>| Echo { bytes: 0 };
    let server = Server::builder(addr, factory).threads(4).start(&mut ev)?;
    println!("listening on {}", server.local_addr());
    ev.run()?; // the server lives as long as its loop (or until `server.stop(..)`)
    // README snippet ends
    Ok(())
}

#[test]
fn snippet_runs_and_echoes() {
    // A free port (the snippet names its address as a string).
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let server_addr = addr.clone();
    // The loop runs until the test process ends, as the snippet's would.
    thread::spawn(move || readme_snippet(&server_addr).map_err(|e| e.to_string()));
    let mut stream = (0..200)
        .find_map(|_| TcpStream::connect(&addr).map_err(|_| thread::sleep(Duration::from_millis(10))).ok())
        .expect("the snippet's server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"hello, snippet").unwrap();
    let mut echoed = [0; 14];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello, snippet");
}

#[test]
fn snippet_matches_readme() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Picking a backend").expect("README has the section")..];
    let start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let in_readme = &section[start..start + section[start..].find("```").unwrap()];

    let here = include_str!("readme_snippet.rs");
    let (begin, end) = ("// README snippet begins\n", "    // README snippet ends");
    let body = &here[here.find(begin).unwrap() + begin.len()..here.find(end).unwrap()];
    let in_test: String = body
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l).replace("builder(addr,", "builder(\"127.0.0.1:9000\","))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(in_readme, in_test, "README's first snippet and tests/learn/readme_snippet.rs differ");
}
