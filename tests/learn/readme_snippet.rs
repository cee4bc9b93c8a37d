//! The quick start, compiled and run: the three snippets that open README
//! and the crate's front page (an echo server, an HTTP service, a client),
//! each over real sockets. `snippets_match_readme_and_front_page` fails when
//! a copy in README.md or src/lib.rs drifts from the one here.

use std::error::Error;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// The echo server, verbatim but for the address (`addr` here,
/// `"127.0.0.1:9000"` in the docs) and the indentation.
fn echo_snippet(addr: &str) -> Result<(), Box<dyn Error>> {
    // snippet echo begins
    use muxloop::{Buffer, Connection, EventLoop, Handler, Server};

    /// One per connection, owned by its loop: plain fields, no locks.
    struct Echo {
        bytes: u64,
    }

    impl Handler for Echo {
        fn on_message(&mut self, ev: &mut EventLoop, conn: &Connection, input: &mut Buffer) {
            self.bytes += input.len() as u64;
            let _ = conn.send(ev, input.peek());
            input.consume_all();
        }
    }

    // The backend by name: "select", "poll", "epoll" or "uring".
    let mut ev = EventLoop::with_backend("poll")?;
    let server = Server::builder(addr, |_: &Connection| Echo { bytes: 0 }).threads(4).start(&mut ev)?;
    println!("listening on {}", server.local_addr());
    ev.run()?; // the server lives as long as its loop (or until `server.stop(..)`)
    // snippet echo ends
    Ok(())
}

/// The HTTP service (address `"127.0.0.1:8080"` in the docs).
#[cfg(feature = "http")]
fn http_snippet(addr: &str) -> Result<(), Box<dyn Error>> {
    // snippet http begins
    use muxloop::EventLoop;
    use muxloop::http::{HttpServer, Request, Response, Router};

    let router = Router::new()
        .get("/hello", |_: &Request| Response::text(200, "hello\n"))
        .post("/echo", |req: &Request| Response::new(200).body(req.body()));
    let mut ev = EventLoop::with_backend("epoll")?;
    let server =
        HttpServer::builder(addr, move |req: &Request| router.respond(req)).threads(2).start(&mut ev)?;
    println!("try: curl http://{}/hello", server.local_addr());
    ev.run()?;
    // snippet http ends
    Ok(())
}

/// The client, for the echo server above (address `"127.0.0.1:9000"` in
/// the docs). Returns the reply it printed, for the test.
fn client_snippet(addr: &str) -> Result<String, Box<dyn Error>> {
    // snippet client begins
    use muxloop::{Buffer, Client, Connection, EventLoop, Handler};
    use std::{cell::RefCell, net::SocketAddr, rc::Rc};

    /// Sends a line and keeps the line that comes back.
    struct Ask {
        reply: Rc<RefCell<String>>,
    }

    impl Handler for Ask {
        fn on_connect(&mut self, ev: &mut EventLoop, conn: &Connection) {
            let _ = conn.send(ev, b"hello\n");
        }

        fn on_message(&mut self, ev: &mut EventLoop, _conn: &Connection, input: &mut Buffer) {
            if let Some(end) = input.find_byte(b'\n') {
                *self.reply.borrow_mut() = String::from_utf8_lossy(&input.take(end + 1)).into_owned();
                ev.quit(); // one answer is all this client wanted
            }
        }
    }

    let reply = Rc::new(RefCell::new(String::new()));
    let mut ev = EventLoop::with_backend("epoll")?;
    let for_handler = Rc::clone(&reply);
    Client::new(addr.parse::<SocketAddr>()?, move |_: &Connection| Ask { reply: Rc::clone(&for_handler) })
        .on_connect_error(|ev, e| {
            eprintln!("cannot connect: {e}");
            ev.quit();
        })
        .connect(&mut ev);
    ev.run()?;
    print!("{}", reply.borrow());
    // snippet client ends
    let printed = reply.borrow().clone();
    Ok(printed)
}

/// A free port on loopback (the snippets name their address as a string).
fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("127.0.0.1:{port}")
}

/// Connects once the snippet's server listens.
fn connect_when_up(addr: &str) -> TcpStream {
    let stream = (0..500)
        .find_map(|_| TcpStream::connect(addr).map_err(|_| thread::sleep(Duration::from_millis(10))).ok())
        .expect("the snippet's server accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

#[test]
fn echo_snippet_echoes_and_client_snippet_reads_the_line() {
    let addr = free_addr();
    let server_addr = addr.clone();
    // The loop runs until the test process ends, as the snippet's would.
    thread::spawn(move || echo_snippet(&server_addr).map_err(|e| e.to_string()));
    let mut stream = connect_when_up(&addr);
    stream.write_all(b"hello, snippet").unwrap();
    let mut echoed = [0; 14];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello, snippet");

    let printed = client_snippet(&addr).unwrap();
    assert_eq!(printed, "hello\n", "the client prints the echoed line");
}

#[cfg(feature = "http")]
#[test]
fn http_snippet_answers_both_routes() {
    let addr = free_addr();
    let server_addr = addr.clone();
    thread::spawn(move || http_snippet(&server_addr).map_err(|e| e.to_string()));
    let mut stream = connect_when_up(&addr);
    stream.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0; 512];
    let n = stream.read(&mut buf).unwrap();
    let hello = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(hello.starts_with("HTTP/1.1 200 OK\r\n") && hello.ends_with("\r\n\r\nhello\n"), "{hello}");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping")
        .unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let echoed = String::from_utf8_lossy(&rest).into_owned();
    assert!(echoed.starts_with("HTTP/1.1 200 OK\r\n") && echoed.ends_with("\r\n\r\nping"), "{echoed}");
}

/// A snippet as the docs show it: the body between its markers, unindented,
/// with the test's address variable spelled as the docs' address.
fn snippet_here(name: &str, doc_addr: &str) -> String {
    let here = include_str!("readme_snippet.rs");
    let begin = format!("// snippet {name} begins\n");
    let end = format!("    // snippet {name} ends");
    let body = &here[here.find(&begin).unwrap() + begin.len()..here.find(&end).unwrap()];
    body.lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| {
            l.replace("(addr,", &format!("({doc_addr:?},"))
                .replace("addr.parse", &format!("{doc_addr:?}.parse"))
        })
        .map(|l| l + "\n")
        .collect()
}

/// The ` ```rust ` blocks of `text` in order (doc comments unprefixed, hidden
/// `# ` lines dropped).
fn rust_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.strip_prefix("//! ").or_else(|| line.strip_prefix("//!")).unwrap_or(line);
        match &mut current {
            None if line.starts_with("```rust") || line == "```no_run" => current = Some(String::new()),
            None => {}
            Some(block) if line == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) if line == "#" || line.starts_with("# ") => {}
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

#[test]
fn snippets_match_readme_and_front_page() {
    let expected: Vec<String> =
        [("echo", "127.0.0.1:9000"), ("http", "127.0.0.1:8080"), ("client", "127.0.0.1:9000")]
            .into_iter()
            .map(|(name, addr)| snippet_here(name, addr))
            .collect();
    let readme = include_str!("../../README.md");
    let quick = &readme[readme.find("## Quick start").expect("README has a quick start")..];
    let quick = &quick[..quick[3..].find("\n## ").map_or(quick.len(), |i| i + 3)];
    assert_eq!(rust_blocks(quick), expected, "README's quick start and tests/learn/readme_snippet.rs differ");
    let lib = include_str!("../../src/lib.rs");
    let front: String = lib.lines().take_while(|l| l.starts_with("//!")).map(|l| format!("{l}\n")).collect();
    let front =
        &front[..front.find("# Layers").expect("the front page has its layers after the quick start")];
    assert_eq!(
        rust_blocks(front),
        expected,
        "the crate's front page and tests/learn/readme_snippet.rs differ"
    );
}
