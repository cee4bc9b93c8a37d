//! Processes and threads outliving (or not) the ones that made them, and a
//! worker pool fed by a blocking queue.
//!
//! ```text
//! cargo run --example process_lab -- orphan [--subreaper]  # a child whose parent exited
//! cargo run --example process_lab -- detach                # main returns: a detached thread dies
//! cargo run --example process_lab -- join                  # main joins: the thread finishes
//! cargo run --example process_lab -- pool [WORKERS]        # workers sleeping on a Condvar
//! ```
//!
//! What to try, what to watch: `orphan` forks a child that forks a
//! grandchild and exits at once; the grandchild prints its parent pid
//! before and after: after, it is 1 (init) or the nearest "subreaper" (in a
//! container or a desktop session, often not 1), and with `--subreaper` it
//! is this lab's own pid, which then reaps it. `detach` never prints the
//! thread's "done" line: when `main` returns the process exits and every
//! thread with it; `join` does. `pool` prints which worker took each job (the queue holds 2: `main` sleeps while it is full):
//! any worker may take any job.

use std::time::Duration;

use muxloop::BlockingQueue;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str).unwrap_or("orphan") {
        "orphan" => orphan(args.iter().any(|a| a == "--subreaper")),
        "detach" | "join" => {
            let handle = std::thread::spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                println!("thread: done");
            });
            if args[0] == "join" {
                handle.join().expect("the thread panicked");
            } else {
                drop(handle); // detached: nobody waits for it
            }
            println!("main: returning");
            Ok(())
        }
        "pool" => {
            let workers: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
            // Room for 2 jobs: the producer sleeps while the workers are behind.
            let queue = BlockingQueue::new(2);
            std::thread::scope(|s| {
                for w in 0..workers {
                    let queue = &queue;
                    s.spawn(move || {
                        while let Some(job) = queue.pop() {
                            println!("worker {w} took job {job}");
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        println!("worker {w}: queue closed, exiting");
                    });
                }
                for job in 0..8 {
                    if queue.push(job).is_ok() {
                        println!("main: queued job {job}");
                    }
                }
                queue.close();
            });
            Ok(())
        }
        other => {
            eprintln!("error: unknown experiment {other:?} (expected one of: orphan, detach, join, pool)");
            std::process::exit(2);
        }
    }
}

#[cfg(muxloop_linux)]
fn orphan(subreaper: bool) -> std::io::Result<()> {
    use muxloop::sys::{self, Forked};
    if subreaper {
        sys::teaching::set_child_subreaper()?;
    }
    println!("lab: pid {}", sys::getpid());
    let (read_end, write_end) = sys::pipe()?;
    match sys::fork()? {
        Forked::Child => {
            if let Forked::Child = sys::fork()? {
                let parent = sys::getppid();
                println!("grandchild: parent {parent}");
                for _ in 0..500 {
                    if sys::getppid() != parent {
                        break; // the parent has exited
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                println!("grandchild: parent now {} (orphaned, re-parented)", sys::getppid());
                std::process::exit(0);
            }
            std::thread::sleep(Duration::from_millis(100)); // let the grandchild print first
            std::process::exit(0); // the middle process leaves its child behind
        }
        Forked::Parent(child) => {
            drop(write_end);
            while sys::waitpid_child_nohang(child)?.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Wait for the grandchild's stdout to close (it inherited the pipe's write end too).
            sys::set_nonblocking(std::os::fd::AsFd::as_fd(&read_end), false)?;
            let _ = sys::read(std::os::fd::AsFd::as_fd(&read_end), &mut [0u8; 1]);
            if subreaper {
                let mut reaped = None; // its fds close a moment before it becomes a zombie
                for _ in 0..500 {
                    reaped = sys::teaching::waitpid_nohang()?;
                    if reaped.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                println!("lab: reaped {:?}", reaped.map(|(pid, status)| (pid, status.code())));
            }
        }
    }
    Ok(())
}

#[cfg(not(muxloop_linux))]
fn orphan(_: bool) -> std::io::Result<()> {
    eprintln!("orphan needs Linux (PR_SET_CHILD_SUBREAPER)");
    Ok(())
}
