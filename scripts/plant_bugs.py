#!/usr/bin/env python3
"""Plants, one at a time, the bug classes that hurt event loops, and checks
that the simulator's scenarios catch each one and that its seed replays.

For each bug: edit the source, run the scenarios of `cargo test --test sim`
(echo, chat, http) over up to --seeds seeds each, take each scenario's
first failing seed from its panic message, run the earliest one alone
(MUXLOOP_SIM_SEED) and check it fails again the same way, then restore the
file. A bug no scenario catches (a oneshot fd: no connection uses one;
a lost cross-thread wake-up: the simulator runs one thread) is then tried
against the dispatcher contract suite, on the simulator first, then on
every backend, and the failing tests are named. Prints a Markdown table
(docs/simulation.md keeps the last one).

    python3 scripts/plant_bugs.py [--seeds 10000] [--only NAME]

Run it on a clean tree: every file is restored at the end, even on Ctrl-C.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name, file, text as it is, text with the bug, what the bug is
BUGS = [
    (
        "eagain-as-eof",
        "src/net/connection/readiness.rs",
        "Err(e) if interrupted_or_would_block(&e) => return,",
        "Err(e) if interrupted_or_would_block(&e) => return self.handle_peer_eof(ev),",
        "`EAGAIN` from a read taken as end of file",
    ),
    (
        "edge-not-drained",
        "src/net/connection/readiness.rs",
        "if !self.inner.edge || !self.reads_wanted() {",
        "if !self.inner.edge || !self.reads_wanted() || taken > 0 {",
        "edge-triggered, but only one read per edge",
    ),
    (
        "short-write-ignored",
        "src/net/connection/send.rs",
        "        if written < total {\n            self.inner.output.borrow_mut().push_slices(slices, written);",
        "        if written == 0 {\n            self.inner.output.borrow_mut().push_slices(slices, written);",
        "a short write taken as complete (the rest is dropped)",
    ),
    (
        "write-interest-left-on",
        "src/net/connection/readiness.rs",
        "        if queued > 0 {\n            interest = interest | Interest::WRITABLE;",
        "        if queued > 0 || current_is_writable(ev, self.inner.fd) {\n            interest = interest | Interest::WRITABLE;",
        "write interest never removed once the output drains (level: a busy loop)",
    ),
    (
        "timers-ignored",
        "src/event_loop/mod.rs",
        "let until_timer = self.timers.next_deadline().map(|d| d.saturating_duration_since(clock::now()));",
        "let until_timer: Option<Duration> = None;",
        "the wait ignores the next timer (it sleeps past idle timeouts)",
    ),
    (
        "wrong-readiness-handled",
        "src/net/connection/readiness.rs",
        "        if event.is_writable()\n            && self.queued_output() > 0",
        "        if event.is_writable()\n            && !event.is_readable()\n            && self.queued_output() > 0",
        "a readable-and-writable event handled as readable only (the write edge is lost)",
    ),
    (
        "stale-event-to-new-owner",
        "src/event_loop/mod.rs",
        "if channel.since_batch == batch || !channel.in_backend {",
        "if !channel.in_backend {",
        "an fd number reused within a batch gets the old owner's event",
    ),
    (
        "oneshot-not-rearmed",
        "src/event_loop/mod.rs",
        "let in_backend = channel.in_backend;\n        match (in_backend, interest.is_empty()) {\n"
        "            (true, true) => self.dispatcher.deregister(fd)?,\n"
        "            (true, false) => self.dispatcher.modify(fd, interest, mode)?,",
        "let in_backend = channel.in_backend;\n        let unchanged = channel.interest == interest;\n"
        "        match (in_backend, interest.is_empty()) {\n"
        "            (true, true) => self.dispatcher.deregister(fd)?,\n"
        "            (true, false) if unchanged => {}\n"
        "            (true, false) => self.dispatcher.modify(fd, interest, mode)?,",
        "a oneshot fd re-armed only when its interest changes",
    ),
    (
        "lost-wakeup",
        "src/event_loop/handle.rs",
        "if !self.wake_pending.swap(true, Ordering::AcqRel)",
        "if self.wake_pending.swap(true, Ordering::AcqRel)",
        "a cross-thread wake-up not written when none is pending (it is lost)",
    ),
    (
        "peer-eof-ignored",
        "src/net/connection/readiness.rs",
        "Ok(0) => return self.handle_peer_eof(ev),",
        "Ok(0) => return,",
        "end of file from the peer ignored (the connection never closes)",
    ),
]

# Extra code some plants need (appended to the file, removed with it).
HELPERS = {
    "write-interest-left-on": (
        "\nfn current_is_writable<D: Dispatcher>(ev: &EventLoop<D>, fd: std::os::fd::RawFd) -> bool {\n"
        "    ev.interest(fd).is_some_and(|i| i.is_writable())\n}\n"
    ),
}

SCENARIOS = ["echo::echo", "chat::chat", "http::http"]
FAILED = re.compile(r"(\w+): seed (\d+) failed \(([^)]*)\): (.*)")


def run_sim(env_extra, timeout, scenarios=SCENARIOS):
    env = dict(os.environ, **env_extra)
    env.pop("RUST_LOG", None)
    started = time.monotonic()
    proc = subprocess.run(
        ["cargo", "test", "-q", "--test", "sim", "--", "--exact", *scenarios],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc, time.monotonic() - started


def contract_suite():
    """The dispatcher contract tests that fail: on the simulator, else on every backend."""
    for label, args in [("contract suite on sim", ["sim::"]), ("contract suite", [])]:
        proc = subprocess.run(
            ["cargo", "test", "-q", "--test", "dispatcher", *args], cwd=ROOT, capture_output=True, text=True, timeout=1800
        )
        # `-q` prints dots; the failing tests are listed, indented, after the second "failures:".
        listing = proc.stdout.rsplit("failures:", 1)[-1] if proc.returncode != 0 else ""
        failed = re.findall(r"^    (\S+)$", listing, re.M)
        if failed:
            return f"{label}: {', '.join(failed[:3])}{' ...' if len(failed) > 3 else ''}"
    return None


def plant(name, path, before, after, seeds):
    file = ROOT / path
    original = file.read_text()
    if original.count(before) != 1:
        return {"name": name, "error": f"the text to change is not found once in {path}"}
    try:
        file.write_text(original.replace(before, after) + HELPERS.get(name, ""))
        build = subprocess.run(
            ["cargo", "test", "-q", "--test", "sim", "--no-run"], cwd=ROOT, capture_output=True, text=True
        )
        if build.returncode != 0:
            return {"name": name, "error": "does not compile:\n" + build.stderr[-2000:]}
        proc, took = run_sim({"MUXLOOP_SIM_SEEDS": str(seeds)}, timeout=1800)
        found = FAILED.findall(proc.stdout + proc.stderr)
        if proc.returncode == 0 or not found:
            return {"name": name, "caught": False, "seconds": took, "suite": contract_suite()}
        caught_by = sorted({(int(seed), scenario) for scenario, seed, _, _ in found})
        seed, scenario = caught_by[0]
        faults, why = next((f, w) for s, n, f, w in found if s == scenario and int(n) == seed)
        replay, _ = run_sim({"MUXLOOP_SIM_SEED": str(seed)}, timeout=600, scenarios=[f"{scenario}::{scenario}"])
        again = [w for s, _, _, w in FAILED.findall(replay.stdout + replay.stderr) if s == scenario]
        return {
            "name": name,
            "caught": True,
            "scenario": scenario,
            "also": ", ".join(f"{s} at seed {n}" for n, s in caught_by[1:]),
            "seed": seed,
            "faults": faults,
            "why": why.strip()[:140],
            "replayed": again == [why],
            "seconds": took,
        }
    finally:
        file.write_text(original)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10_000, help="seeds to try per bug (default 10000)")
    parser.add_argument("--only", help="plant only the bug with this name")
    args = parser.parse_args()
    bugs = [b for b in BUGS if args.only in (None, b[0])]
    if not bugs:
        sys.exit(f"--only {args.only}: no such bug; names: {', '.join(b[0] for b in BUGS)}")
    print("| bug | what it is | caught by | seeds to catch | replayed | first failure |")
    print("|---|---|---|---|---|---|")
    for name, path, before, after, what in bugs:
        r = plant(name, path, before, after, args.seeds)
        if "error" in r:
            print(f"| {name} | {what} | - | - | - | {r['error']} |")
        elif not r["caught"]:
            by = r["suite"] or "**nothing**"
            print(f"| {name} | {what} | no scenario; {by} | > {args.seeds} | - | - |")
        else:
            print(
                f"| {name} | {what} | {r['scenario']}{' (also ' + r['also'] + ')' if r['also'] else ''} "
                f"| {r['seed'] + 1} (seed {r['seed']}: {r['faults']}) "
                f"| {'yes' if r['replayed'] else 'NO'} | {r['why']} |"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
