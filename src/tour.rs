//! Docs only: the course as a tour through this crate. The text lives in
//! `docs/tour/*.md` (one file per chapter), written for a code host;
//! `build.rs` (`tour_docs`) copies each chapter into `OUT_DIR` with its
//! figures inlined and its links to other chapters turned into module paths,
//! and those copies are included here, so `cargo doc` checks every link in
//! them. A new chapter is one more module below, including
//! `concat!(env!("OUT_DIR"), "/docs/tour/NN-name.md")`: `build.rs` finds
//! the module of each chapter here.
#![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/00-tour.md"))]

pub mod sockets {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/01-sockets.md"))]
}

pub mod io_models {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/02-io-models.md"))]
}

pub mod select {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/03-select.md"))]
}

pub mod poll {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/04-poll.md"))]
}

pub mod epoll {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/05-epoll.md"))]
}

pub mod trigger_modes {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/06-trigger-modes.md"))]
}

pub mod channels {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/07-channels.md"))]
}

pub mod partial_writes {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/08-partial-writes.md"))]
}

pub mod event_loop {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/09-event-loop.md"))]
}

pub mod tcp_lifecycle {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/10-tcp-lifecycle.md"))]
}

pub mod framing {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/11-framing.md"))]
}

pub mod multi_reactor {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/12-multi-reactor.md"))]
}

pub mod processes {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/13-processes.md"))]
}

pub mod http {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/14-http.md"))]
}

pub mod datagrams {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/16-datagrams.md"))]
}

pub mod kernel {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/17-kernel.md"))]
}

pub mod simulation {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/18-simulation.md"))]
}

pub mod glossary {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/15-glossary.md"))]
}

pub mod concepts {
    #![doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tour/concepts.md"))]
}
