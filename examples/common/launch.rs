//! The server examples' shared ending: serve a bound listener in this
//! process (Ctrl-C or SIGTERM stops it gracefully; a second one exits at
//! once), or in `processes` forked workers whose master forwards the stop.

use std::io;
use std::time::Duration;

use muxloop::process::Master;
use muxloop::{EventLoop, Listener};

/// How a serving loop waits for its stop signal.
pub type Wait<'a> = &'a dyn Fn(&mut EventLoop) -> io::Result<()>;

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
