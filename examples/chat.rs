//! Chat room: every line a client sends goes to every *other* client.
//!
//! ```text
//! cargo run --example chat -- [ADDR] [--threads N] [--dispatcher NAME]      # default 127.0.0.1:9002
//! cargo run --example chat_client -- 127.0.0.1:9002                           # in two terminals
//! ```
//! With `--threads 4`, clients live on different sub-loops; the room holds a
//! `Send` [`ConnectionHandle`](muxloop::ConnectionHandle) per client, and a
//! broadcast queues each send to the receiving connection's own loop.
//!
//! Policy for slow members: a member with more than 1 MiB of undelivered
//! lines is dropped from the room (closed), so a client that never reads
//! cannot make the server buffer the conversation without bound.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{Args, Result};
use log::{info, warn};
use muxloop::{Callbacks, ConnectionHandle, Dispatcher, EventLoop, TcpConnection, TcpServer};

/// A client that sends more than this without a newline is disconnected.
const MAX_LINE: usize = 64 * 1024;
/// A member whose undelivered messages pass this is dropped from the room:
/// one silent member must not make the server buffer the whole conversation.
const MEMBER_QUEUE_LIMIT: usize = 1024 * 1024;

type Room<D> = Arc<Mutex<HashMap<u64, ConnectionHandle<D>>>>;

/// Queues `line` for `member`, or drops a member that has stopped reading.
fn deliver<D: Dispatcher + 'static>(ev: &mut EventLoop<D>, member: &TcpConnection<D>, line: &[u8]) {
    if member.queued_output() + line.len() > MEMBER_QUEUE_LIMIT {
        warn!(
            "{}: {} bytes undelivered, dropping it from the room",
            member.peer_addr(),
            member.queued_output()
        );
        member.force_close(ev);
        return;
    }
    let _ = member.send(ev, line);
}

fn run<D: Dispatcher + 'static>(args: Args) -> Result {
    let mut ev = EventLoop::<D>::new()?;
    let room: Room<D> = Arc::default();
    let members = Arc::clone(&room);
    let callbacks = Callbacks::<D>::new()
        .on_connection(move |_, conn| {
            let mut members = members.lock().unwrap_or_else(|e| e.into_inner());
            if conn.is_connected() {
                members.insert(conn.id(), conn.handle());
            } else {
                members.remove(&conn.id());
            }
            info!(
                "{} {} ({} in the room)",
                conn.peer_addr(),
                if conn.is_connected() { "joined" } else { "left" },
                members.len()
            );
        })
        .on_message(move |ev, conn, input| {
            while let Some(eol) = input.find_eol() {
                let line = input.take(eol + 1);
                // Copy the recipients out so the lock is not held while sending.
                let others: Vec<_> = {
                    let members = room.lock().unwrap_or_else(|e| e.into_inner());
                    members.values().filter(|h| h.id() != conn.id()).cloned().collect()
                };
                let line: Arc<[u8]> = Arc::from(line);
                for other in others {
                    let line = Arc::clone(&line);
                    let _ = other.run(move |ev, member| deliver(ev, member, &line));
                }
            }
            if input.len() > MAX_LINE {
                warn!("{}: line longer than {MAX_LINE} bytes, closing", conn.peer_addr());
                conn.force_close(ev);
            }
        });
    let server =
        TcpServer::builder(args.addr, callbacks).threads(args.threads).name("chat").start(&mut ev)?;
    common::serve(&mut ev, server.local_addr())
}

example_main!(9002, run);
