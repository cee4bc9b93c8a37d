//! Length-prefixed messages: `| length u32 BE | type u32 BE | body |`.
//!
//! ```text
//! cargo run --example framed -- [ADDR] [--threads N] [--dispatcher NAME] [--max-body BYTES]   # default 127.0.0.1:9004
//! ```
//! The server answers each message as it completes: TYPE1 (11) with
//! "Hi, " + body, TYPE2 (21) with "Hello, " + body, PING (1) with PONG (2).
//! A frame that declares a body over `--max-body` (default 64 KiB), or an
//! unknown type, gets an ERROR (99) frame saying why, and the connection is
//! half-closed after it is sent; nothing of the oversized body is buffered.

mod common;

use common::framing::{self, Decoded, MSG_ERROR, MSG_PING, MSG_PONG, MSG_TYPE1, MSG_TYPE2};
use common::{Args, Result};
use log::warn;
use muxloop::{Callbacks, Dispatcher, EventLoop, TcpConnection, TcpServer};

fn reject<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, conn: &TcpConnection<D>, why: String) {
    warn!("{}: {why}; closing", conn.peer_addr());
    let _ = conn.send(ev, &framing::encode(MSG_ERROR, why.as_bytes()));
    // Half-close rather than close: closing with unread input would send RST
    // and could destroy the error frame in flight.
    conn.shutdown(ev);
}

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    let max_body: usize = args.flag_or("--max-body", 64 * 1024)?;
    let mut ev = EventLoop::<D>::new()?;
    let callbacks =
        Callbacks::<D>::new().on_connection(common::log_connection).on_message(move |ev, conn, input| {
            if !conn.is_connected() {
                // Rejected: discard whatever else arrives until the peer closes.
                return input.consume_all();
            }
            while conn.is_connected() {
                let (kind, body) = match framing::decode(input, max_body) {
                    Decoded::Frame { kind, body } => (kind, body),
                    Decoded::Incomplete => return,
                    Decoded::TooLong(len) => {
                        input.consume_all();
                        return reject(
                            ev,
                            conn,
                            format!("frame body of {len} bytes exceeds the {max_body}-byte limit"),
                        );
                    }
                };
                let reply = match kind {
                    MSG_PING => framing::encode(MSG_PONG, &[]),
                    MSG_TYPE1 => framing::encode(MSG_TYPE1, &[b"Hi, ".as_slice(), &body].concat()),
                    MSG_TYPE2 => framing::encode(MSG_TYPE2, &[b"Hello, ".as_slice(), &body].concat()),
                    other => {
                        input.consume_all();
                        return reject(ev, conn, format!("unknown message type {other}"));
                    }
                };
                let _ = conn.send(ev, &reply);
            }
        });
    let server =
        TcpServer::builder(args.addr, callbacks).threads(args.threads).name("framed").start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

example_main!(9004, run);
