#!/usr/bin/env python3
"""The tour's annotated runs: one real run per chapter (01-14), regenerated.

    python3 scripts/tour_runs.py            # build, run every scenario, rewrite the chapters' run regions
    python3 scripts/tour_runs.py --check    # the same runs; exit 1 (with a diff) where a chapter differs
    python3 scripts/tour_runs.py 03 06      # only these chapters
    python3 scripts/tour_runs.py --raw 03   # print a scenario's whole transcript (to write new patterns)

Each scenario builds nothing itself: the script first runs
`cargo build --release --examples`. A scenario starts a server from
target/release/examples on 127.0.0.1:0 (it prints `listening on ADDR`),
drives it with clients written here (Python sockets, loopback only, every
wait bounded), stops it with SIGTERM and keeps its log. Then an excerpt
picks lines by pattern: each (pattern, annotation) pair below names the line
it explains, and the first line after the previous pick that matches is
quoted. A pattern that matches nothing is an error naming the chapter and
the pattern: the code changed and the annotation may no longer be true.

The quoted lines are normalised so a rerun gives the same text: env_logger's
timestamp is dropped, the server's port reads PORT and any other loopback
port EPHEMERAL, pids read PID, durations with a decimal point read T (its
unit kept); a scenario adds its own rules for counts that vary (bytes
queued). fd numbers are not normalised: every server starts from a clean fd
table (0-2 only, as from a shell), so they are stable. The region of a
chapter is everything between its `<!-- run:begin -->` and `<!-- run:end -->`
lines (inserted after the `**See it.**` paragraph the first time).

Python 3 standard library only; needs `ss` (iproute2) and `strace` for the
chapters that show them.
"""

from __future__ import annotations

import difflib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "docs" / "tour"
BIN = ROOT / "target" / "release" / "examples"
BEGIN, END = "<!-- run:begin -->", "<!-- run:end -->"
TIMEOUT = 10.0  # the longest any single wait may take


class RunError(Exception):
    pass


# --- normalisation -------------------------------------------------------------------------------

def normalise(line: str, ports: set[int], pids: set[int]) -> str:
    line = line.rstrip()
    line = re.sub(r"^\[\d{4}-\d\d-\d\dT[\d:.]+Z ", "[", line)  # env_logger's timestamp
    def port(m: re.Match) -> str:
        return f"{m.group(1)}:{'PORT' if int(m.group(2)) in ports else 'EPHEMERAL'}"
    line = re.sub(r"(127\.0\.0\.1|\[::1\]|0\.0\.0\.0|\*):(\d{2,5})\b", port, line)
    for pid in sorted(pids, key=lambda p: -len(str(p))):
        line = re.sub(rf"(?<![\d.]){pid}(?![\d.])", "PID", line)
    line = re.sub(r"\b\d+\.\d+ ?(ms|µs|us|s)\b", r"T \1", line)
    line = re.sub(r"\b0x[0-9a-f]{8,}\b", "0xADDR", line)
    return line


# --- processes -----------------------------------------------------------------------------------

class Server:
    """An example server on 127.0.0.1:0, its stderr (the log) in a file."""

    def __init__(self, name: str, args: list[str] = (), log: str = "trace", addr: str | None = "127.0.0.1:0",
                 prefix: list[str] = (), env: dict | None = None):
        self.name = name
        self.logfile = tempfile.NamedTemporaryFile(prefix=f"tour-{name}-", suffix=".log", delete=False)
        argv = [*prefix, str(BIN / name), *([addr] if addr else []), *args]
        self.command = " ".join([f"RUST_LOG={log}", name, *([addr] if addr else []), *args])
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.logfile, text=True,
            env={**os.environ, "RUST_LOG": log, **(env or {})}, close_fds=True, start_new_session=True)
        self.stdout: queue.Queue[str] = queue.Queue()
        self.out_lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = 0
        self.kept: list[str] | None = None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.stdout.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            m = re.match(r"listening on \S*:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return
        self.stop()
        raise RunError(f"{name} did not say 'listening on' within {TIMEOUT} s:\n" + "\n".join(self.log()[-20:]))

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.out_lines.append(line.rstrip("\n"))
            self.stdout.put(line)

    def log(self) -> list[str]:
        if self.kept is not None:
            return self.kept
        return Path(self.logfile.name).read_text(errors="replace").splitlines()

    def wait_log(self, pattern: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for l in self.log() if re.search(pattern, l)) >= count:
                return
            time.sleep(0.02)
        raise RunError(f"{self.name}: no {count} log line(s) matching {pattern!r} within {timeout} s:\n"
                       + "\n".join(self.log()[-30:]))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=3)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop(signal.SIGKILL)
        self.kept = self.log()
        os.unlink(self.logfile.name)


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def recv_within(s: socket.socket, n: int, seconds: float) -> bytes:
    """Up to n bytes, or b"" if none arrive within `seconds` (a client left waiting)."""
    s.settimeout(seconds)
    try:
        return s.recv(n)
    except TimeoutError:
        return b""
    finally:
        s.settimeout(TIMEOUT)


def tool(argv: list[str], timeout: float = TIMEOUT) -> list[str]:
    if shutil.which(argv[0]) is None:
        raise RunError(f"{argv[0]} is not installed (apt-get install {'iproute2' if argv[0] == 'ss' else argv[0]})")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return r.stdout.splitlines()


# --- excerpts ------------------------------------------------------------------------------------

@dataclass
class Excerpt:
    """Lines of one source (a server's log, a client's transcript, a tool's
    output) and the picks: (pattern, annotation) in the order the lines come."""
    heading: str
    commands: list[str]
    lines: list[str]
    picks: list[tuple[str, str]]
    subs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Run:
    chapter: str
    intro: str
    excerpts: list[Excerpt]
    ports: set[int] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)


def render(run: Run) -> str:
    out = [BEGIN, "", f"**A run.** {run.intro} (Made by `python3 scripts/tour_runs.py`, which reruns it"
           " and fails if a quoted line no longer appears; timestamps are dropped and ports, pids and"
           " durations replaced by `PORT`, `EPHEMERAL`, `PID` and `T`.)", ""]
    for ex in run.excerpts:
        lines = [normalise(l, run.ports, run.pids) for l in ex.lines]
        for pattern, repl in ex.subs:
            lines = [re.sub(pattern, repl, l) for l in lines]
        kept, notes, at = [], [], 0
        for pattern, note in ex.picks:
            for i in range(at, len(lines)):
                if re.search(pattern, lines[i]):
                    kept.append(lines[i])
                    notes.append(note)
                    at = i + 1
                    break
            else:
                raise RunError(f"chapter {run.chapter}, {ex.heading}: no line matches {pattern!r} "
                               f"(annotated: {note!r}) after line {at} of:\n" + "\n".join(lines))
        out += [ex.heading, "", "```text", *[f"$ {normalise(c, run.ports, run.pids)}" for c in ex.commands], *kept, "```", ""]
        out += [f"{i}. {note}" for i, note in enumerate(notes, 1)] + [""]
    out.append(END)
    return "\n".join(out)


def chapter_file(chapter: str) -> Path:
    (path,) = TOUR.glob(f"{chapter}-*.md")
    return path


def splice(text: str, region: str, chapter: str) -> str:
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        if END not in rest:
            raise RunError(f"chapter {chapter}: {BEGIN} without {END}")
        return head + region + rest.split(END, 1)[1]
    # First time: after the **See it.** paragraph (up to its blank line).
    m = re.search(r"^\*\*See it\.\*\*.*?\n\n", text, re.S | re.M)
    if not m:
        raise RunError(f"chapter {chapter}: no **See it.** paragraph")
    return text[:m.end()] + region + "\n\n" + text[m.end():]


def region_of(text: str) -> str:
    if BEGIN not in text:
        return ""
    return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END


# --- the scenarios, one per chapter --------------------------------------------------------------
# Each returns a Run: its excerpts, and next to each quoted line the
# annotation that explains it. The clients are paced by the server's log
# (wait_log), so the lines of one thread come in the same order every run.

def strace_prefix(path: str, calls: str) -> list[str]:
    if shutil.which("strace") is None:
        raise RunError("strace is not installed (apt-get install strace)")
    return ["strace", "-f", "-qq", "-o", path, "-e", f"trace={calls}"]


def strace_lines(path: str) -> list[str]:
    # `-f` prefixes each line with the thread's pid: drop it.
    lines = Path(path).read_text().splitlines()
    os.unlink(path)
    return [re.sub(r"\) += ", ") = ", re.sub(r"^\d+ +", "", l)) for l in lines]


def ch01() -> Run:
    client: list[str] = []
    with Server("ladder_01_blocking") as s:
        a = connect(s.port)
        a.sendall(b"one\n")
        client.append(f"client A: sent 'one', got {recv_exactly(a, 4)!r}")
        s.wait_log(r"blocked in read on fd 4", 2)
        b = connect(s.port)
        b.sendall(b"two\n")
        client.append(f"client B: sent 'two', got {recv_within(b, 4, 0.5)!r} within half a second")
        listen = tool(["ss", "-tln", f"sport = {s.port}"])
        a.close()
        client.append(f"client A: closed; client B then got {recv_exactly(b, 4)!r}")
        b.close()
        s.wait_log(r"left after", 2)
        s.stop()
        log = s.log()
    return Run("01", "Rung 01 and two clients driven by the script: A is served; B connects and "
               "sends, and waits until A leaves.", [
        Excerpt("What the clients saw:", [], client, [
            (r"client A: sent", "A's line comes straight back: the server is in A's read loop."),
            (r"client B: sent", "B's `connect` succeeded (the kernel completed the handshake) but nothing came back: "
                                "no one calls `accept` for it."),
            (r"client A: closed", "As soon as A leaves, the server accepts B and echoes the line B sent long ago."),
        ]),
        Excerpt("While B waited, the listening socket:", ["ss -tln sport = PORT"], listen, [
            (r"^State", "For a listening socket `Recv-Q` is the accept queue's length and `Send-Q` its limit (the backlog)."),
            (r"^LISTEN +1 ", "B is that 1: connected in the kernel, not yet accepted by the program."),
        ]),
        Excerpt("The server's log:", [s.command], log, [
            (r"blocked in accept on fd 3", "The listener is fd 3 (0-2 are stdio): the thread sleeps in `accept`."),
            (r"connected \(fd 4\)", "A is accepted as fd 4; from now on the thread serves only A."),
            (r"fd 4: read 4 bytes", "A's line, written back at once."),
            (r"blocked in read on fd 4", "Back to sleep in `read` on A: B's bytes sit in the kernel meanwhile."),
            (r"left after 4 bytes", "A closed (read returned 0)."),
            (r"connected \(fd 4\)", "B, accepted only now, gets the freed fd 4."),
            (r"fd 4: read 4 bytes", "The line B sent while it waited, read at last."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch02() -> Run:
    trace = tempfile.mktemp(prefix="tour-strace-")
    with Server("ladder_04_select", log="off", prefix=strace_prefix(trace, "socket,openat,accept4,recvmsg,sendto,close")) as s:
        c = connect(s.port)
        c.sendall(b"hello\n")
        got = recv_exactly(c, 6)
        assert got == b"hello\n", got
        c.close()
        time.sleep(0.3)
        s.stop()
    return Run("02", "Rung 04 under `strace`, one client sending `hello`: every socket is non-blocking, "
               "and a call with nothing to do returns `EAGAIN` instead of sleeping.", [
        Excerpt("The system calls:",
                [f"strace -f -e trace=socket,openat,accept4,recvmsg,sendto,close ladder_04_select 127.0.0.1:0"],
                strace_lines(trace), [
            (r"^socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC\|SOCK_NONBLOCK, IPPROTO_TCP\) = 3",
             "The listener, fd 3, is non-blocking from birth (`SOCK_NONBLOCK`): `accept` on it never sleeps."),
            (r"^openat\(.*= 4$", "fd 4: the spare fd, kept to survive `EMFILE` (given back to accept and close a client when "
                                 "the fd table is full)."),
            (r"^accept4\(3, .*SOCK_CLOEXEC\|SOCK_NONBLOCK\) = 5",
             "`select` said fd 3 is readable: `accept4` returns the client as fd 5, non-blocking too."),
            (r"^accept4\(3, .*= -1 EAGAIN", "The loop accepts until the queue is empty: the second call returns `EAGAIN` "
                                            "at once, where a blocking listener would put the thread to sleep."),
            (r"^recvmsg\(5, .*iov_base=\"hello\\n\".*= 6$",
             "`select` said fd 5 is readable: one `recvmsg` into two buffers (the connection's `Buffer`, then the thread's "
             "64 KiB spill area) takes the 6 bytes. Level-triggered, it does not read again to `EAGAIN`: if more were "
             "left, the next `select` would report fd 5 again."),
            (r"^sendto\(5, \"hello\\n\", 6, MSG_NOSIGNAL.*= 6", "The echo: all 6 bytes fit in the send buffer "
                                                                 "(`MSG_NOSIGNAL`: a dead peer gives `EPIPE`, not `SIGPIPE`)."),
            (r"^recvmsg\(5, .*= 0$", "The client closed: `recvmsg` returns 0, end of stream."),
            (r"^close\(5\)", "The server closes its side and forgets fd 5."),
        ], subs=[(r"sin_port=htons\(\d+\)", "sin_port=htons(EPHEMERAL)"), (r"\[(\d+) => \d+\]", r"[\1 => N]")]),
    ], ports={s.port}, pids={s.proc.pid})


def echo_once(port: int, payload: bytes = b"hello\n") -> socket.socket:
    c = connect(port)
    c.sendall(payload)
    got = recv_exactly(c, len(payload))
    if got != payload:
        raise RunError(f"echo: sent {payload!r}, got {got!r}")
    return c


def ch03() -> Run:
    with Server("ladder_04_select") as s:
        c = echo_once(s.port)
        c.close()
        s.wait_log(r"closed \(fd 5\)")
        s.stop()
    return Run("03", "Rung 04 with `RUST_LOG=trace` and one client that sends `hello` and leaves.", [
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"select: 1 ready of 1 registered, scanned 4 fd slots",
             "Only the listener (fd 3) is registered, yet select scans slots 0-3: the highest fd plus one."),
            (r"fd 3 READABLE", "The listener is readable: a connection waits in the accept queue."),
            (r"connected as fd 5", "The client is fd 5 (fd 4 is the spare fd kept for `EMFILE`)."),
            (r"select: 1 ready of 2 registered, scanned 6 fd slots",
             "Two fds registered, six slots scanned (0-5): select's cost follows the highest fd, not the count."),
            (r"fd 5 READABLE", "The client's `hello` arrived."),
            (r"fd 5: read 6", "Read once (level-triggered: what is left would be reported again)."),
            (r"fd 5: sent 6/6", "Echoed whole, so no write interest is needed."),
            (r"fd 5 READABLE", "Readable again: this time it is the end of stream."),
            (r"closed \(fd 5\)", "`recv` returned 0: the slot for fd 5 is emptied."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch04() -> Run:
    trace = tempfile.mktemp(prefix="tour-strace-")
    with Server("ladder_05_poll_epoll", ["--dispatcher", "poll"], log="debug", prefix=strace_prefix(trace, "poll")) as s:
        a = echo_once(s.port)
        b = echo_once(s.port, b"second\n")
        a.close()
        s.wait_log(r"fd 5 closed")
        b.close()
        s.wait_log(r"fd 6 closed")
        s.stop()
    return Run("04", "Rung 05 on `poll` (`--dispatcher poll`) under `strace -e trace=poll`: two clients, "
               "one after the other, each sends a line and leaves.", [
        Excerpt("The `poll` calls:", ["strace -f -e trace=poll ladder_05_poll_epoll 127.0.0.1:0 --dispatcher poll"],
                strace_lines(trace), [
            (r"^poll\(\[\{fd=3, events=POLLIN\}\], 1, MS\) = 1 \(\[\{fd=3, revents=POLLIN\}\]\)",
             "The array poll gets on every call: one `pollfd` per registered fd (only the listener, fd 3, so far), "
             "its length, the timeout in ms (the rung wakes once a second to log its rate). The kernel answers in "
             "the same array: `revents` says fd 3 is readable, a client to accept."),
            (r"^poll\(\[\{fd=3, events=POLLIN\}, \{fd=5, events=POLLIN\}\], 2, .*revents=POLLIN\}\]\)",
             "The client, fd 5, is in the array now: the whole array crosses into the kernel on every call, "
             "and the kernel checks every entry: the cost grows with the number registered."),
            (r"^poll\(\[\{fd=3, events=POLLIN\}, \{fd=5, events=POLLIN\}, \{fd=6, events=POLLIN\}\], 3, ",
             "A second client, fd 6: three entries. Unlike select there is no fd-number limit and no slot "
             "scan up to the highest fd, but still a pass over all of them."),
        ], subs=[(r", \d+\) += ", ", MS) = ")]),
        Excerpt("The server's log (`RUST_LOG=debug`):", [], s.log(), [
            (r"connected as fd 5", "The first client, fd 5 (3 the listener, 4 the spare fd)."),
            (r"connected as fd 6", "The second, fd 6."),
            (r"fd 5 closed", "The first leaves: its entry is removed from the array."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch05() -> Run:
    trace = tempfile.mktemp(prefix="tour-strace-")
    calls = "epoll_create1,epoll_ctl,epoll_wait,epoll_pwait"
    with Server("ladder_05_poll_epoll", log="off", prefix=strace_prefix(trace, calls)) as s:
        c = echo_once(s.port)
        c.close()
        time.sleep(0.3)
        s.stop()
    return Run("05", "Rung 05 on epoll (its default) under `strace`: one client sends `hello` and leaves.", [
        Excerpt("The epoll calls:", [f"strace -f -e trace={calls} ladder_05_poll_epoll 127.0.0.1:0"],
                strace_lines(trace), [
            (r"^epoll_create1\(EPOLL_CLOEXEC\) = 5",
             "The interest list lives in the kernel, in an epoll instance: fd 5 (after the listener 3 and the spare fd 4)."),
            (r"^epoll_ctl\(5, EPOLL_CTL_ADD, 3, \{events=EPOLLIN",
             "The listener is added once; it stays registered across calls (no array to pass each time)."),
            (r"^epoll_(p?wait)\(5, \[\{events=EPOLLIN, data=\{u32=3",
             "The wait returns only the ready fds: here fd 3, the listener."),
            (r"^epoll_ctl\(5, EPOLL_CTL_ADD, 6, \{events=EPOLLIN",
             "The client, fd 6, added to the interest list, once."),
            (r"^epoll_(p?wait)\(5, \[\{events=EPOLLIN, data=\{u32=6",
             "Its `hello`: one event for one ready fd, however many are registered."),
            (r"^epoll_ctl\(5, EPOLL_CTL_DEL, 6",
             "The client left: removed from the interest list before its fd is closed."),
        ], subs=[(r", \d+\) += ", ", MS) = "), (r"u64=\d+", "u64=N")]),
    ], ports={s.port}, pids={s.proc.pid})


def ch06() -> Run:
    client: list[str] = []
    with Server("ladder_06_edge", ["--no-drain"]) as s:
        c = connect(s.port)
        s.wait_log(r"fd 6 WRITABLE \(edge\)")  # the registration's edge, before any data
        time.sleep(0.1)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
        c.sendall(line)
        first = recv_exactly(c, 16)
        client.append(f"sent {len(line)} bytes, got back {first!r} and then {recv_within(c, 64, 0.5)!r} (nothing more)")
        c.sendall(b"next\n")
        second = recv_exactly(c, 16)
        client.append(f"sent 5 more: got back {second!r}, the next 16 of the first line")
        c.close()
        s.wait_log(r"fd 6 closed")
        s.stop()
    return Run("06", "Rung 06 with `--no-drain` (one 16-byte read per edge) and a client that sends a 37-byte line, "
               "then 5 bytes more.", [
        Excerpt("What the client saw:", [], client, [
            (r"^sent 37 bytes", "Only 16 bytes come back: the server read once and the rest sits in its receive buffer, "
                                "with no event to come for it (edge-triggered: no new data, no new edge)."),
            (r"^sent 5 more", "New bytes make a new edge: the server reads 16 more, the old ones, not the new line."),
        ]),
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"connected as fd 6", "The client is fd 6 (3 listener, 4 spare fd, 5 epoll)."),
            (r"fd 6 WRITABLE \(edge\)", "Registration itself reports the current state as an edge: the socket "
                                         "has room to send."),
            (r"fd 6: drained \(EAGAIN\)", "Nothing to read yet: the handler's read got `EAGAIN`."),
            (r"fd 6 READABLE \| WRITABLE \(edge\)", "The 37 bytes arrive: an edge, and epoll reports the whole "
                                                     "current mask with it, WRITABLE included."),
            (r"fd 6: read 16", "One read of 16."),
            (r"fd 6: whatever is left unread", "`--no-drain`: it stops here instead of reading to `EAGAIN`."),
            (r"fd 6: read 16", "The 5 new bytes trigger an edge: again one read of 16."),
            (r"fd 6 closed", "The client left; 10 bytes were never read."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch07() -> Run:
    with Server("ladder_04_select", log="debug") as s:
        a = echo_once(s.port, b"from a\n")
        b = echo_once(s.port, b"from b\n")
        a.sendall(b"a again\n")
        recv_exactly(a, 8)
        a.close()
        s.wait_log(r"closed \(fd 5\)")
        c = echo_once(s.port, b"from c\n")
        b.close()
        c.close()
        s.wait_log(r"closed \(fd 6\)")
        s.wait_log(r"closed \(fd 5\)", 2)
        s.stop()
    return Run("07", "Rung 04 (its table of channels, `Vec<Option<Channel>>` indexed by fd) with `RUST_LOG=debug` "
               "and three clients: A and B together, then A leaves and C arrives.", [
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"connected as fd 5", "A: slot 5 of the table gets A's socket and output buffer."),
            (r"connected as fd 6", "B: slot 6. The fd is the key: an event for fd 6 finds B's state in one index."),
            (r"closed \(fd 5\)", "A leaves: slot 5 is emptied (its buffer dropped) and fd 5 is free."),
            (r"connected as fd 5", "C gets the lowest free fd, 5, and so A's old slot: the table never grows past "
                                   "the highest fd in use."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch08() -> Run:
    total = 16 << 20
    got = bytearray()
    with Server("ladder_05_poll_epoll") as s:
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        c.settimeout(TIMEOUT)
        c.connect(("127.0.0.1", s.port))
        sender = threading.Thread(target=lambda: c.sendall(b"x" * total), daemon=True)
        sender.start()  # and read nothing, for now
        s.wait_log(r"-> WRITABLE \(\d+ bytes queued\)")
        while len(got) < total:  # now read the whole echo
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        sender.join(TIMEOUT)
        s.wait_log(r"-> READABLE \(drained\)")
        c.close()
        s.wait_log(r"fd 6 closed")
        s.stop()
    if len(got) != total:
        raise RunError(f"chapter 08: {len(got)} of {total} bytes echoed")
    return Run("08", "Rung 05 (epoll) with `RUST_LOG=trace` and a client that sends 16 MiB with a 64 KiB receive "
               "buffer (`SO_RCVBUF`) and reads nothing until the server has stopped reading it; then it reads the "
               "whole echo. Byte counts vary from run to run (`N`, `M`), and so does the interest set before some "
               "arrows (`…`).", [
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"connected as fd 6", "The client is fd 6 (3 the listener, 4 the spare fd, 5 the epoll instance)."),
            (r"fd 6: sent N/N$", "At first every echo leaves whole: the kernel's buffers have room."),
            (r"fd 6: sent N/M \(partial write\)", "Then the client's receive buffer and the server's send buffer are "
                                                 "full: `send` takes only part. The rest stays in the output `Buffer`."),
            (r"fd 6 … -> WRITABLE \(N bytes queued\)", "Write interest is on (it goes on only once something is "
                                                       "queued, to hear when there is room), and past 256 KiB queued "
                                                       "reading stops (interest `WRITABLE` alone): bounded memory for "
                                                       "a client that does not read."),
            (r"fd 6 … -> READABLE \(drained\)", "The client read: the queue drained, so writable interest goes off "
                                               "again (left on, a writable socket would wake every level-triggered "
                                               "call), and reading resumes."),
        ], subs=[(r"sent \d+/(\d+)$", r"sent N/N"), (r"sent \d+/\d+ \(partial", "sent N/M (partial"),
                 (r"\(\d+ bytes queued\)", "(N bytes queued)"), (r"fd 6 [A-Z |]+ -> ", "fd 6 … -> ")]),
    ], ports={s.port}, pids={s.proc.pid})


def ch09() -> Run:
    with Server("ladder_07_event_loop", ["--idle", "1"]) as s:
        c = echo_once(s.port, b"hi\n")
        start = time.monotonic()
        eof = recv_within(c, 16, 5)
        waited = time.monotonic() - start
        c.close()
        s.stop()
    if eof != b"" or waited < 0.9:
        raise RunError(f"chapter 09: expected the server to close after ~1 s, got {eof!r} after {waited:.1f} s")
    return Run("09", "Rung 07 with `--idle 1` and `RUST_LOG=trace`: one client sends `hi`, then stays silent and is "
               "kicked a second later (its `recv` returns end of stream).", [
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"registered fd 5 for READABLE \(Level\)", "The listener, fd 5 (3 is the epoll instance, 4 the loop's "
                                                        "waker), gets its handler."),
            (r"epoll \(timeout T ms, 2 fds in the backend, waker included\) returned 1 events .*: fd 5 READABLE",
             "The dispatch timeout is the nearest timer (the once-a-second stats timer); the listener is readable."),
            (r"registered fd 7 for READABLE \(Level\)", "The client, fd 7 (6 is the spare fd), gets its handler, "
                                                        "and an idle timer."),
            (r"fd 7 READABLE$", "`hi` arrives: echoed, and the idle timer re-armed (cancelled and set again)."),
            (r"returned 0 events", "Silence: the wait ends with no events, because a timer is due."),
            (r"timer N fired", "A timer fires: the stats timer or the client's idle timer."),
            (r"deregistered fd 7", "The idle timer's callback removes the client's handler..."),
            (r"fd 7: idle for too long", "... and closes it: a silent client costs a timer, not a thread."),
        ], subs=[(r"timer \d+ fired", "timer N fired")]),
    ], ports={s.port}, pids={s.proc.pid})


def ch10() -> Run:
    with Server("heartbeat", ["server", "127.0.0.1:0", "--interval", "0.2", "--misses", "2"], log="debug",
                addr=None) as s:
        client = subprocess.run(
            [str(BIN / "heartbeat"), "client", f"127.0.0.1:{s.port}", "--interval", "0.2", "--pings", "2"],
            env={**os.environ, "RUST_LOG": "debug"}, capture_output=True, text=True, timeout=TIMEOUT,
            stdin=subprocess.DEVNULL)
        s.wait_log(r" down$")
        s.stop()
    if client.returncode != 0:
        raise RunError(f"chapter 10: heartbeat client exited {client.returncode}: {client.stderr}")
    return Run("10", "`heartbeat` with a 0.2 s interval: the client pings twice and then goes quiet; the server, "
               "which allows 2 missed heartbeats, closes it, and the client sees the close.", [
        Excerpt("The client's log:", ["RUST_LOG=debug heartbeat client 127.0.0.1:PORT --interval 0.2 --pings 2"],
                client.stderr.splitlines(), [
            (r"up \(epoll\)", "Connected: the three-way handshake is done."),
            (r"PONG from", "First ping answered."),
            (r"PONG from", "Second ping answered; then `--pings 2` makes the client stop sending."),
            (r"peer closed its side", "A read returned 0: the server's FIN."),
            (r"down$", "The client closes too: the four-way close completes."),
        ]),
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"up \(epoll\)", "The client's connection, with its silence timer armed (re-armed by every frame)."),
            (r"connection 1: timed out", "No frame for two intervals: the timer fires."),
            (r"silent for T ms \(2 missed heartbeats\), closing", "The server closes: without heartbeats a dead peer "
                                                                 "(unplugged, no FIN or RST) would hold the "
                                                                 "connection forever."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch11() -> Run:
    client: list[str] = []
    with Server("rot13") as s:
        c = connect(s.port)
        s.wait_log(r"registered fd 8")
        c.sendall(b"Hel")
        s.wait_log(r"connection 1: read 3 bytes")
        client.append(f"sent 'Hel', got {recv_within(c, 16, 0.3)!r} (no whole line yet)")
        c.sendall(b"lo\nWor")
        client.append(f"sent 'lo\\nWor', got {recv_exactly(c, 6)!r}")
        c.sendall(b"ld\n")
        client.append(f"sent 'ld\\n', got {recv_exactly(c, 6)!r}")
        c.close()
        s.wait_log(r"down \(connection 1\)")
        s.stop()
    return Run("11", "`rot13` (line framing) with `RUST_LOG=trace` and a client that sends `Hello\\nWorld\\n` cut "
               "in the wrong places.", [
        Excerpt("What the client saw:", [], client, [
            (r"^sent 'Hel'", "Three bytes are not a line: nothing comes back."),
            (r"^sent 'lo", "The line is complete: `Uryyb`; `Wor` waits in the input buffer."),
            (r"^sent 'ld", "`Wor` + `ld\\n`: the second line."),
        ]),
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"connection 1: read 3 bytes", "`Hel`: read into the connection's input buffer, and no line to "
                                            "answer yet."),
            (r"connection 1: read 6 bytes", "`lo\\nWor`: the buffer now holds `Hello\\nWor`; the handler takes "
                                            "one line out..."),
            (r"connection 1: sent 6/6", "... and sends `Uryyb\\n`; `Wor` stays in the input buffer."),
            (r"connection 1: read 3 bytes", "`ld\\n` completes `World\\n`."),
            (r"connection 1: sent 6/6", "`Jbeyq\\n`."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch12() -> Run:
    with Server("ladder_09_multi_reactor", ["--threads", "2"]) as s:
        a = echo_once(s.port)
        s.wait_log(r"sent 6/6")
        b = echo_once(s.port)
        s.wait_log(r"sent 6/6", 2)
        a.close()
        b.close()
        s.wait_log(r"connection 2 down")
        s.stop()
    return Run("12", "Rung 09 with `--threads 2` and `RUST_LOG=trace`: two clients, one after the other.", [
        Excerpt("The server's log (the thread is in brackets):", [s.command], s.log(), [
            (r"\[main\] registered fd 9 for READABLE", "The main loop owns only the listener (fd 9)."),
            (r"listening on .*\(epoll dispatcher, 2 sub-loop\(s\)\)", "Two sub-loops, each an event loop on its "
                                                                       "own thread (`ladder-09-0`, `ladder-09-1`) "
                                                                       "with its own epoll instance."),
            (r"\[main\] accepted 127.0.0.1:EPHEMERAL as fd 11", "The main loop accepts the first client..."),
            (r"\[main\] handing .* \(fd 11\) to sub-loop 0", "... and hands it to sub-loop 0 (round robin)."),
            (r"\[ladder-09-0\] woken: 1 tasks from other threads", "Sub-loop 0 was asleep in `epoll_wait`: the main "
                                                                   "loop queued a task and wrote to its waker."),
            (r"\[ladder-09-0\] registered fd 11 for READABLE \| WRITABLE \(Edge\)", "The connection is registered "
                                                                                   "in sub-loop 0's epoll, and "
                                                                                   "lives there from now on."),
            (r"\[ladder-09-0\] connection 1: sent 6/6", "Its echo, on thread `ladder-09-0`."),
            (r"\[main\] handing .* \(fd 12\) to sub-loop 1", "The second client goes to sub-loop 1."),
            (r"\[ladder-09-1\] connection 2: sent 6/6", "Echoed on the other thread: two cores can serve two "
                                                        "clients at once."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


def ch13() -> Run:
    with Server("ladder_03_fork", ["--no-reap"], log="debug") as s:
        a = echo_once(s.port)
        b = echo_once(s.port)
        s.wait_log(r"forked pid", 2)
        a.close()
        b.close()
        deadline = time.monotonic() + TIMEOUT
        while True:
            ps = tool(["ps", "-o", "stat,comm", "--ppid", str(s.proc.pid)])
            if sum(1 for l in ps if l.startswith("Z")) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        pids = {int(m) for l in s.log() for m in re.findall(r"forked pid (\d+)", l)}
        s.stop()
    return Run("13", "Rung 03 with `--no-reap` (it never calls `waitpid`) and `RUST_LOG=debug`: two clients "
               "come and go.", [
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"forked pid PID for 127.0.0.1:EPHEMERAL \(fd 4\)", "The first client: a child process serves it "
                                                                 "(the parent closes its copy of fd 4 and "
                                                                 "goes back to `accept`)."),
            (r"forked pid PID for 127.0.0.1:EPHEMERAL \(fd 4\)", "The second: another child, and fd 4 again."),
        ]),
        Excerpt("After both clients left, the server's children:", ["ps -o stat,comm --ppid PID"], ps, [
            (r"^STAT", "`STAT` is the process state."),
            (r"^Z", "The first child exited, but no one collected its exit status: a zombie (`Z`, `<defunct>`), "
                    "holding a pid until the parent calls `waitpid` (or exits)."),
            (r"^Z", "The second one too. Without `--no-reap` the rung's `SIGCHLD` handling reaps them."),
        ]),
    ], ports={s.port}, pids={s.proc.pid} | pids)


def ch14() -> Run:
    with Server("ladder_10_http", log="trace") as s:
        c = connect(s.port)
        c.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        reply = b""
        while b"hello, world\n" not in reply:
            chunk = c.recv(4096)
            if not chunk:
                break
            reply += chunk
        c.close()
        s.wait_log(r"down")
        s.stop()
    lines = reply.decode(errors="replace").replace("\r\n", "\n").splitlines()
    return Run("14", "Rung 10 with `RUST_LOG=trace` and one `GET /hello` sent by hand over a socket.", [
        Excerpt("The request and the reply:", [r"printf 'GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n' | nc 127.0.0.1 PORT"],
                lines, [
            (r"^HTTP/1.1 200 OK", "The status line: HTTP/1.1, 200."),
            (r"(?i)^content-length: 13", "The body's length, so the connection can stay open for the next request "
                                         "(keep-alive is HTTP/1.1's default)."),
            (r"^hello, world$", "The body, after the blank line that ends the headers."),
        ]),
        Excerpt("The server's log:", [s.command], s.log(), [
            (r"read 40 bytes", "The 40-byte request arrives in one read: a whole head, up to the blank line."),
            (r"sent \d+/\d+", "The response, status line, headers and body, in one send."),
        ]),
    ], ports={s.port}, pids={s.proc.pid})


# --- main ----------------------------------------------------------------------------------------

SCENARIOS = {f"{n:02}": globals()[f"ch{n:02}"] for n in range(1, 15)}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    raw = "--raw" in argv
    if "-h" in argv or "--help" in argv:
        print(__doc__)
        return 0
    chosen = [a for a in argv if not a.startswith("-")] or list(SCENARIOS)
    unknown = [c for c in chosen if c not in SCENARIOS]
    if unknown:
        print(f"error: no chapter {', '.join(unknown)} (01-14)", file=sys.stderr)
        return 2
    print("building the examples (cargo build --release --examples) ...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--examples"], cwd=ROOT, check=True)
    failed = []
    for chapter in chosen:
        try:
            run = SCENARIOS[chapter]()
            if raw:
                for ex in run.excerpts:
                    print(f"--- {ex.heading}")
                    print("\n".join(normalise(l, run.ports, run.pids) for l in ex.lines))
                continue
            region = render(run)
        except (RunError, OSError, subprocess.SubprocessError) as e:
            print(f"chapter {chapter}: FAILED: {e}", file=sys.stderr)
            failed.append(chapter)
            continue
        path = chapter_file(chapter)
        text = path.read_text()
        if check:
            old = region_of(text)
            if old != region:
                diff = difflib.unified_diff(old.splitlines(), region.splitlines(), f"{path.name} (committed)",
                                            f"{path.name} (this run)", lineterm="")
                print("\n".join(diff))
                failed.append(chapter)
            else:
                print(f"chapter {chapter}: up to date", file=sys.stderr)
        else:
            new = splice(text, region, chapter)
            if new != text:
                path.write_text(new)
                print(f"chapter {chapter}: rewrote {path.relative_to(ROOT)}", file=sys.stderr)
            else:
                print(f"chapter {chapter}: unchanged", file=sys.stderr)
    if failed:
        print(f"{'differ' if check else 'failed'}: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
