//! The server examples' shared ending: serve a bound listener in this
//! process (Ctrl-C or SIGTERM stops it gracefully; a second one exits at
//! once), or in `processes` forked workers whose master forwards the stop.

use std::io::{self, Write};
use std::time::Duration;

use muxloop::process::Master;
use muxloop::{EventLoop, Listener};

use super::cli::ServerArgs;

/// How a serving loop waits for its stop signal.
pub type Wait<'a> = &'a dyn Fn(&mut EventLoop) -> io::Result<()>;

/// Binds `args`' address (see [`ServerArgs::bind`]), says `listening on
/// ADDR (dispatcher: NAME)` on stdout (its first line, which tests read for
/// the address), then serves as [`serve_until_stopped`] does, in
/// `args.processes` workers. The dispatcher's name is checked here, once,
/// before any fork (the loop made for it is dropped at once).
#[allow(dead_code)] // http_server says more than the address, and announces itself
pub fn announce_and_serve(
    args: &ServerArgs,
    grace: Duration,
    serve: impl Fn(Listener, Wait<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let listener = args.bind()?;
    let name = EventLoop::with_backend(&args.dispatcher)?.dispatcher_name().to_owned();
    println!("listening on {} (dispatcher: {name})", listener.local_addr());
    io::stdout().flush()?;
    serve_until_stopped(listener, args.processes, grace, serve)
}

/// Calls `serve(listener, wait)` here, or once in each of `processes`
/// workers (`grace`: how long the master waits for them at stop).
pub fn serve_until_stopped(
    listener: Listener,
    processes: usize,
    grace: Duration,
    serve: impl Fn(Listener, Wait<'_>) -> io::Result<()>,
) -> io::Result<()> {
    if processes > 1 {
        Master::new(listener, processes).grace(grace).run(|ctx| {
            serve(ctx.listener().try_clone()?, &|ev| {
                ctx.stop_on_sigterm(ev)?;
                ev.run()
            })
        })
    } else {
        serve(listener, &|ev| {
            ev.run_until_signal(&[muxloop::signal::SIGINT, muxloop::signal::SIGTERM]).map(drop)
        })
    }
}
