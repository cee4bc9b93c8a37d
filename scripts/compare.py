#!/usr/bin/env python3
"""Side-by-side comparison of muxloop with what a user would pick instead
(libevent, a raw epoll loop, tokio, hyper, nginx, Redis), measured in one run
on this machine.

Method: every server runs on SERVER_CPU and every load generator on
CLIENT_CPU (taskset); the servers of a table are measured in turn, the order
reversed every other round, and each figure is the median of ROUNDS runs. The
headline is the server's CPU time per request (or per MiB), user and system
apart: the utime/stime deltas of /proc/PID/stat, summed over the process and
its descendants (nginx's workers), divided by what was served.

The peers are in this repository: peers/c/ (C programs, built here with
gcc into WORK/bin), peers/nginx/ (nginx configurations) and peers/src/ (the
Rust peers, built with cargo). See peers/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import signal
import socket
import sys
import textwrap
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

sys.dont_write_bytecode = True  # no __pycache__ left in scripts/
sys.path.insert(0, str(Path(__file__).resolve().parent))

from comparelib import parse, tools  # noqa: E402
from comparelib.chart import dispatch_svg  # noqa: E402
from comparelib.measure import Figures, Recorder, Runs, add, alternate, fmt, median, per, ratio  # noqa: E402
from comparelib.procs import (CpuMeter, Holder, NotStarted, Server, log, open_fds, rss_kib,  # noqa: E402
                              run_tool, warn)
from comparelib.report import Report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {
    "dispatch": "libevent_ring (libevent's bench.c method) vs the backends example: µs per ring run, "
                "N = 100..9000 pairs, epoll/poll/select; writes docs/dispatch.svg",
    "echo": "pingpong_client (16 KiB blocks, ECHO_SESSIONS) against raw_epoll_echo, libevent_echo, "
            "tokio_echo and examples/echo on each backend: MiB/s, server CPU µs per MiB",
    "http": "wrk -t1 -c100 /hello against nginx (1 worker), hyper_hello and http_server --threads 0 on each "
            "backend: req/s, server CPU µs per request; then the old UNPINNED table (wrk -t2, nginx 1 and 2 workers)",
    "kv": "redis-benchmark -t set,get -n KV_N (-c 50/1000, -P 1/16) against redis-server and examples/kv: "
          "req/s (2 KV_N over the wall time), CPU µs per request",
    "latency": "p50/p99/p99.9 at LAT_RATE req/s over 50 connections (oha, else h2load) against nginx, "
               "hyper_hello and http_server",
    "idle": "the pinned http run and the kv -c 50 run again with IDLE_COUNTS idle connections held to every server",
    "memory": "RSS per idle connection of echo servers holding 10,000 idle connections",
    "udp": "datagrams/s through examples/udp_echo vs raw_udp_echo (udp_echo flood, 64 in flight, 64 and 1400 B)",
    "unix": "examples/echo over TCP loopback and over a Unix socket, examples/pingpong_client: MiB/s, CPU per MiB",
    "proxy": "examples/proxy --copy vs --splice in front of an echo server (PROXY_STREAMS streams, 64 KiB): "
             "MiB/s, the proxy's CPU s per GiB relayed",
    "edge": "http_server and echo on epoll with --trigger level vs edge: CPU µs per request / per block",
    "files": "a FILES_MIB file fetched by wrk -t1 -c10 from nginx (sendfile) and http_server --root: "
             "MiB/s, server CPU s per GiB, wrk's own CPU",
}


# --- settings: environment variables, each also a flag ---------------------------

def _words(s: str) -> list[str]:
    return s.replace(",", " ").split()


def _ints(s: str) -> list[int]:
    return [int(w) for w in _words(s)]


def _bool(s: str) -> bool:
    return s.strip().lower() in ("1", "true", "yes", "on")


SETTINGS = [  # (ENV name, parser, default, help); the flag is --env-name
    ("ROUNDS", int, "3", "rounds: each figure is the median of ROUNDS runs, the servers alternated"),
    ("ECHO_SECS", float, "5", "seconds of each pingpong run (echo, unix, proxy, edge)"),
    ("HTTP_SECS", float, "10", "wrk -d seconds (http, idle, edge)"),
    ("UDP_SECS", float, "5", "seconds of each udp_echo flood (udp)"),
    ("FILES_SECS", float, "10", "wrk -d seconds (files)"),
    ("FILES_MIB", int, "100", "size of the file served in files, MiB"),
    ("KV_N", int, "100000", "redis-benchmark -n, per test: set+get make 2N requests (kv, idle)"),
    ("ECHO_SESSIONS", _ints, "1 10 100 1000", "pingpong sessions, one group of rows each (echo, unix)"),
    ("PROXY_STREAMS", _ints, "1 10 100", "pingpong streams through the proxy (proxy)"),
    ("IDLE_COUNTS", _ints, "1000 5000", "idle connections held open to every server (idle)"),
    ("LAT_RATE", int, "10000", "fixed request rate, req/s over 50 connections (latency)"),
    ("LAT_SECS", float, "10", "seconds of each latency run (latency)"),
    ("SERVER_CPU", str, "1", "CPU the servers are pinned to (taskset -c)"),
    ("CLIENT_CPU", str, "0", "CPU the load generators are pinned to"),
    ("BACKENDS", _words, "select poll epoll uring",
     "muxloop dispatchers measured; one the example cannot start (io_uring refused) is left out"),
    ("SKIP_BUILD", _bool, "0", "build nothing (env: SKIP_BUILD=1): use what is already in WORK/bin and cargo's target/release"),
    ("WORK", Path, "/tmp/muxloop-compare",
     "scratch directory: bin/ (C peers), logs/, results.md, measurements.csv and .json, dispatch.csv"),
    ("HTTP_BASELINE", str, "", "path of another http_server build (say, before a change), measured in the "
                               "same pinned http rounds as the row 'baseline'"),
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    epilog = ["sections (all by default, in this order):"]
    for name, text in SECTIONS.items():
        epilog += textwrap.wrap(text, 100, initial_indent=f"  {name:9} ", subsequent_indent=" " * 12)
    epilog += ["", "settings: each is an environment variable or the flag above;",
               "the flag wins. Lists are space- or comma-separated.", "",
               "output: the tables in Markdown on stdout and in WORK/results.md (machine, load, command at the top);",
               "every raw run in WORK/measurements.csv (one row per figure) and WORK/measurements.json;",
               "the dispatch chart in docs/dispatch.svg (--svg). Progress and the servers' logs: stderr, WORK/logs/.",
               "", "needs: gcc, libevent-dev, nginx-light, wrk, redis-server, redis-tools, oha or nghttp2-client",
               "(h2load), cargo; only those the chosen sections use. As root with apt-get, missing Debian",
               "packages are installed; otherwise it stops, naming what is missing.", "",
               "examples:",
               "  scripts/compare.py                              # everything (~40 min on 2 cores)",
               "  scripts/compare.py http kv                      # some sections",
               "  SKIP_BUILD=1 ROUNDS=5 HTTP_SECS=5 scripts/compare.py edge",
               "  HTTP_BASELINE=/tmp/old/http_server BACKENDS=epoll scripts/compare.py http",
               "  scripts/compare.py --rounds 5 --echo-secs 5 --kv-n 100000 echo kv"]
    p = argparse.ArgumentParser(
        prog="compare.py", description=__doc__,
        epilog="\n".join(epilog), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sections", nargs="*", metavar="SECTION",
                   help="sections to run: " + " ".join(SECTIONS))
    for env, _, default, text in SETTINGS:
        flag = "--" + env.lower().replace("_", "-")
        if env == "SKIP_BUILD":
            p.add_argument(flag, action="store_const", const="1", default=None, help=f"{text} [env {env}]")
        else:
            p.add_argument(flag, default=None, metavar=env, help=f"{text} [env {env}, default: {default or 'none'}]")
    p.add_argument("--svg", type=Path, default=ROOT / "docs" / "dispatch.svg",
                   help="where the dispatch section writes its chart [default: docs/dispatch.svg of this tree]")
    args = p.parse_args(argv)
    for env, conv, default, _ in SETTINGS:
        attr = env.lower()
        raw = getattr(args, attr)
        if raw is None:
            raw = os.environ.get(env, default)
        try:
            setattr(args, attr, conv(raw))
        except ValueError:
            p.error(f"{env}: cannot read {raw!r}")
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        p.error(f"unknown section {' '.join(unknown)} (sections: {' '.join(SECTIONS)})")
    args.sections = args.sections or list(SECTIONS)
    if args.rounds < 1:
        p.error("ROUNDS must be at least 1")
    return args


# --- the run's context --------------------------------------------------------------

@dataclass
class Ctx:
    s: argparse.Namespace
    work: Path
    logs: Path
    bin: Path       # C peers
    ex: Path        # muxloop's examples
    rust: Path      # tokio_echo, hyper_hello
    report: Report
    rec: Recorder

    def server(self, name: str, argv: list, *, port: int | None = None, ready_text: str | None = None,
               cpu: str | None = "server") -> Server:
        """A server, pinned to SERVER_CPU unless cpu is None or 'client'."""
        where = {"server": self.s.server_cpu, "client": self.s.client_cpu, None: None}[cpu]
        return Server(name, [str(a) for a in argv], self.logs, port=port, ready_text=ready_text, cpu=where)

    def client(self, argv: list, *, pinned: bool = True, timeout: float | None = None):
        """A load tool, run to the end on CLIENT_CPU (or anywhere if not pinned)."""
        return run_tool([str(a) for a in argv], cpu=self.s.client_cpu if pinned else None, timeout=timeout)

    def rounds(self, section: str, table: str, subjects: list[str], measure: Callable[[str], Figures],
               **params) -> Runs:
        return alternate(self.s.rounds, subjects, measure, recorder=self.rec, section=section, table=table,
                         params=params, progress=warn)


def muxloop_servers(ctx: Ctx, stack: ExitStack, first_port: int, argv: Callable[[int, str], list],
                    backends: list[str] | None = None, pinned: bool = True) -> dict[str, tuple[Server, int]]:
    """examples/... on every backend, ports first_port, first_port+1, ...; a
    backend whose server cannot start is left out, saying why."""
    out = {}
    for i, d in enumerate(backends or ctx.s.backends):
        port = first_port + i
        try:
            srv = stack.enter_context(ctx.server(f"muxloop_{d}", argv(port, d), port=port,
                                                 cpu="server" if pinned else None))
            out[f"muxloop_{d}"] = (srv, port)
        except NotStarted as e:
            warn(f"left out: {e}")
    return out


def nginx(ctx: Ctx, conf: str, prefix: Path, port: int, workers: int, pinned: bool = True) -> Server:
    """nginx in the foreground with peers/nginx/CONF, all its files under prefix."""
    prefix.mkdir(parents=True, exist_ok=True)
    return ctx.server(f"nginx-{conf.split('.')[0]}", [
        "nginx", "-p", f"{prefix}/", "-c", ROOT / "peers" / "nginx" / conf, "-e", "error.log",
        "-g", f"daemon off; worker_processes {workers};"], port=port, cpu="server" if pinned else None)


def secs(v: float) -> str:
    return f"{v:g}"


# --- what one run measures -----------------------------------------------------------

def wrk_run(ctx: Ctx, srv: Server, url: str, seconds: float, threads: int = 1, conns: int = 100,
            pinned: bool = True) -> Figures:
    """wrk against srv: req/s, and srv's CPU µs per request."""
    with CpuMeter(srv.pid) as cpu:
        r = ctx.client(["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs(seconds)}s", url], pinned=pinned,
                       timeout=seconds + 60)
    w = parse.wrk(r.text)
    return {"rps": w["rps"], "requests": w["requests"], "user_us": per(cpu.user_s, w["requests"]),
            "sys_us": per(cpu.sys_s, w["requests"]), "errors": w["errors"]}


@dataclass
class Echoed:
    """One pingpong run: the rate, the MiB moved (over the time measured, not
    the time asked for), failed sessions, and the server's CPU seconds."""
    mib_s: float | None
    mib: float | None
    failed: float | None
    user_s: float
    sys_s: float

    def per_mib(self) -> Figures:
        return {"mib_s": self.mib_s, "user_us_per_mib": per(self.user_s, self.mib),
                "sys_us_per_mib": per(self.sys_s, self.mib), "failed": self.failed}


def _echoed(text: str, cpu: CpuMeter) -> Echoed:
    rate, elapsed = parse.key_value(text, "MiB/s"), parse.key_value(text, "secs")
    mib = rate * elapsed if rate is not None and elapsed else None
    return Echoed(rate, mib, parse.key_value(text, "failed"), cpu.user_s, cpu.sys_s)


def pingpong_c(ctx: Ctx, srv: Server, port: int, sessions: int, block: int = 16384) -> Echoed:
    """peers/c/pingpong_client against srv."""
    with CpuMeter(srv.pid) as cpu:
        r = ctx.client([ctx.bin / "pingpong_client", "127.0.0.1", port, sessions, block, secs(ctx.s.echo_secs)],
                       timeout=ctx.s.echo_secs + 120)
    return _echoed(r.text, cpu)


def pingpong_mux(ctx: Ctx, srv: Server, target: list, sessions: int, block: int) -> Echoed:
    """examples/pingpong_client (epoll) against srv; target is HOST:PORT or --unix PATH."""
    with CpuMeter(srv.pid) as cpu:
        r = ctx.client([ctx.ex / "pingpong_client", *target, "--sessions", sessions, "--block", block,
                        "--seconds", secs(ctx.s.echo_secs), "--dispatcher", "epoll"], timeout=ctx.s.echo_secs + 120)
    return _echoed(r.text, cpu)


# --- 1. dispatch ---------------------------------------------------------------------

def dispatch(ctx: Ctx) -> None:
    log(f"dispatch: bench.c ring, a=1 w=100, 25 runs per round, {ctx.s.rounds} rounds")
    rows, points, csv_lines = [], [], ["backend,n,muxloop_us,libevent_us"]
    for method in ("epoll", "poll", "select"):
        for n in (100, 1000, 5000, 9000):
            def measure(who: str) -> Figures:
                if who == "muxloop":
                    r = run_tool([str(ctx.ex / "backends"), "--csv", "--only", method, "--sizes", str(n),
                                  "--runs", "25"], timeout=600)
                    last = r.text.strip().splitlines()[-1].split(",") if r.text.strip() else []
                    ok = r.status == 0 and len(last) > 5 and last[0] == method
                    return {"us_per_run": float(last[5]) if ok else None}
                r = run_tool([str(ctx.bin / "libevent_ring"), "-n", str(n), "-a", "1", "-w", "100", "-r", "25",
                              "-m", method], timeout=600)
                us = [parse.key_value(line, "us") for line in r.text.splitlines() if " us=" in line]
                return {"us_per_run": median(us) if r.status == 0 and us else None}  # select aborts past fd 1024

            runs = ctx.rounds("dispatch", "dispatch", ["muxloop", "libevent"], measure, method=method, n=n)
            m, lev = runs.median("muxloop", "us_per_run"), runs.median("libevent", "us_per_run")
            rows.append([method, n, fmt(m, 1), fmt(lev, 0) if lev is not None else "aborts", ratio(m, lev)])
            csv_lines.append(f"{method},{n},{fmt(m, 1)},{fmt(lev, 0) if lev is not None else 'aborts'}")
            if m is not None:
                points.append((method, n, m))
    ctx.report.table(["dispatch (us per run, a=1 w=100)", "N", "muxloop", "libevent", "muxloop/libevent"], rows)
    (ctx.work / "dispatch.csv").write_text("\n".join(csv_lines) + "\n")
    dispatch_svg(points, ctx.s.svg)
    log(f"wrote {ctx.s.svg}")


# --- 2. echo -------------------------------------------------------------------------

def echo(ctx: Ctx) -> None:
    log(f"echo: pingpong_client on cpu {ctx.s.client_cpu}, servers on cpu {ctx.s.server_cpu}, 16 KiB blocks, "
        f"{secs(ctx.s.echo_secs)}s per run, {ctx.s.rounds} rounds")
    title = "echo, pinned (16 KiB blocks)"
    rows = []
    with ExitStack() as stack:
        servers = {
            "raw_epoll_echo": (stack.enter_context(ctx.server(
                "raw_epoll_echo", [ctx.bin / "raw_epoll_echo", "127.0.0.1", 9100], port=9100)), 9100),
            "libevent_echo": (stack.enter_context(ctx.server(
                "libevent_echo", [ctx.bin / "libevent_echo", "127.0.0.1", 9101], port=9101)), 9101),
            "tokio_echo": (stack.enter_context(ctx.server(
                "tokio_echo", [ctx.rust / "tokio_echo", "127.0.0.1:9105"], port=9105)), 9105),
        }
        servers |= muxloop_servers(ctx, stack, 9110, lambda p, d: [ctx.ex / "echo", f"127.0.0.1:{p}", "--dispatcher", d])
        for sessions in ctx.s.echo_sessions:
            runs = ctx.rounds("echo", title, list(servers),
                              lambda s: pingpong_c(ctx, servers[s][0], servers[s][1], sessions).per_mib(),
                              sessions=sessions)
            raw, tok = runs.median("raw_epoll_echo", "mib_s"), runs.median("tokio_echo", "mib_s")
            for s in servers:
                m = runs.median(s, "mib_s")
                rows.append(["", sessions, s, fmt(m, 1), fmt(runs.median(s, "user_us_per_mib")),
                             fmt(runs.median(s, "sys_us_per_mib")), ratio(m, raw), ratio(m, tok),
                             f"{runs.total(s, 'failed'):.0f}"])
    ctx.report.table([title, "sessions", "server", "MiB/s", "user µs/MiB", "sys µs/MiB", "MiB/s vs raw_epoll_echo",
                      "vs tokio_echo", "failed sessions"], rows)


# --- 3. http -------------------------------------------------------------------------

def http(ctx: Ctx) -> None:
    http_pinned(ctx, 0, "http")
    http_unpinned(ctx)


def hello_servers(ctx: Ctx, stack: ExitStack) -> dict[str, tuple[Server, int]]:
    """The /hello servers pinned on SERVER_CPU: nginx (one worker) on 8081,
    hyper_hello on 8090, http_server (one loop) on every backend from 8082."""
    servers = {
        "nginx": (stack.enter_context(nginx(ctx, "hello.conf", ctx.work / "nginx-hello", 8081, 1)), 8081),
        "hyper_hello": (stack.enter_context(ctx.server(
            "hyper_hello", [ctx.rust / "hyper_hello", "127.0.0.1:8090"], port=8090)), 8090),
    }
    servers |= muxloop_servers(ctx, stack, 8082, lambda p, d: [
        ctx.ex / "http_server", f"127.0.0.1:{p}", "--threads", "0", "--dispatcher", d])
    return servers


def http_pinned(ctx: Ctx, idle: int, section: str) -> None:
    """Every server on SERVER_CPU (one worker / one loop), wrk -t1 -c100 on
    CLIENT_CPU; `idle` extra idle connections held open to each server."""
    log(f"http pinned: taskset -c {ctx.s.client_cpu} wrk -t1 -c100 -d{secs(ctx.s.http_secs)}s /hello, "
        f"{idle} idle connections, {ctx.s.rounds} rounds")
    title = f"HTTP /hello, pinned, {idle} idle conns"
    with ExitStack() as stack:
        servers = hello_servers(ctx, stack)
        if ctx.s.http_baseline:
            try:
                servers["baseline"] = (stack.enter_context(ctx.server("baseline", [
                    ctx.s.http_baseline, "127.0.0.1:8089", "--threads", "0", "--dispatcher", "epoll"], port=8089)), 8089)
            except NotStarted as e:
                warn(f"left out: {e}")
        held = {}
        if idle:
            for _, port in servers.values():
                stack.enter_context(Holder(port, idle, ctx.logs))
            time.sleep(1)
            held = {s: open_fds(srv.pid) for s, (srv, _) in servers.items()}
        runs = ctx.rounds(section, title, list(servers), lambda s: wrk_run(
            ctx, servers[s][0], f"http://127.0.0.1:{servers[s][1]}/hello", ctx.s.http_secs), idle=idle)
    med = {s: runs.median(s, "rps") for s in servers}
    cpu = {s: add(runs.median(s, "user_us"), runs.median(s, "sys_us")) for s in servers}
    rows = [["", s, fmt(med[s]), fmt(runs.median(s, "user_us")), fmt(runs.median(s, "sys_us")), fmt(cpu[s]),
             ratio(med[s], med["nginx"]), ratio(cpu[s], cpu["nginx"]), ratio(med[s], med["hyper_hello"]),
             held.get(s, "-"), f"{runs.total(s, 'errors'):.0f}"] for s in servers]
    ctx.report.table([title, "server", "req/s", "user µs/req", "sys µs/req", "CPU µs/req", "req/s vs nginx",
                      "CPU vs nginx", "req/s vs hyper", "server fds", "errors+non-2xx"], rows)
    if idle == 0 and "muxloop_epoll" in servers:
        e = "muxloop_epoll"
        ctx.report.line("")
        ctx.report.line(f"Targets (epoll): CPU/req vs nginx {ratio(cpu[e], cpu['nginx'])} (<= 0.85), "
                        f"req/s vs nginx {ratio(med[e], med['nginx'])} (>= 1.1), "
                        f"req/s vs hyper {ratio(med[e], med['hyper_hello'])} (>= 1.3)")


def http_unpinned(ctx: Ctx) -> None:
    """The old table: nothing pinned, the scheduler splits the cores between
    the server and wrk -t2 (so it measures the scheduler's share too)."""
    log(f"http unpinned: wrk -t2 -c100 -d{secs(ctx.s.http_secs)}s /hello, {ctx.s.rounds} rounds")
    title = "HTTP /hello req/s, UNPINNED (scheduler share decides)"
    rows = []
    for workers in (1, 2):
        threads = "0" if workers == 1 else "2"  # one loop does everything / two sub-loops (plus the acceptor)
        with ExitStack() as stack:
            servers = {"nginx": (stack.enter_context(
                nginx(ctx, "hello.conf", ctx.work / "nginx-hello", 8081, workers, pinned=False)), 8081)}
            servers |= muxloop_servers(ctx, stack, 8082, lambda p, d: [
                ctx.ex / "http_server", f"127.0.0.1:{p}", "--threads", threads, "--dispatcher", d],
                backends=["select", "poll", "epoll"], pinned=False)
            runs = ctx.rounds("http", title, list(servers), lambda s: wrk_run(
                ctx, servers[s][0], f"http://127.0.0.1:{servers[s][1]}/hello", ctx.s.http_secs, threads=2,
                pinned=False), workers=workers)
        med = {s: runs.median(s, "rps") for s in servers}
        bad = sum(runs.total(s, "errors") for s in servers if s != "nginx")
        rows.append(["", workers, *(fmt(med.get(f"muxloop_{d}")) for d in ("select", "poll", "epoll")),
                     fmt(med["nginx"]), ratio(med.get("muxloop_epoll"), med["nginx"]), f"{bad:.0f}"])
    ctx.report.table([title, "workers/threads", "muxloop select", "muxloop poll", "muxloop epoll", "nginx",
                      "epoll/nginx", "errors, non-2xx (muxloop)"], rows)


# --- 4. kv ---------------------------------------------------------------------------

def flushall(port: int) -> None:
    """FLUSHALL over RESP, so every run starts from an empty store."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            s.recv(64)
    except OSError:
        pass


def kv(ctx: Ctx) -> None:
    kv_pinned(ctx, 0, [(50, 1), (1000, 1), (50, 16), (1000, 16)], "kv")


def kv_pinned(ctx: Ctx, idle: int, configs: list[tuple[int, int]], section: str) -> None:
    """redis-benchmark -t set,get -n KV_N on CLIENT_CPU, per (clients, pipeline),
    against redis-server and examples/kv on SERVER_CPU."""
    n_req = 2 * ctx.s.kv_n
    log(f"kv pinned: redis-benchmark -t set,get -n {ctx.s.kv_n} "
        f"({' '.join(f'{c}:{p}' for c, p in configs)} clients:pipeline), {idle} idle connections, {ctx.s.rounds} rounds")
    title = f"KV set+get, pinned, {idle} idle conns"
    rows = []
    with ExitStack() as stack:
        servers = {"redis": (stack.enter_context(ctx.server("redis", [
            "redis-server", "--port", "6390", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--maxclients", "20000"], port=6390)), 6390)}
        servers |= muxloop_servers(ctx, stack, 6391, lambda p, d: [ctx.ex / "kv", f"127.0.0.1:{p}", "--dispatcher", d])
        held = {}
        if idle:
            for _, port in servers.values():
                stack.enter_context(Holder(port, idle, ctx.logs))
            time.sleep(1)
            held = {s: open_fds(srv.pid) for s, (srv, _) in servers.items()}
        for clients, pipe in configs:
            def measure(s: str) -> Figures:
                srv, port = servers[s]
                flushall(port)
                with CpuMeter(srv.pid) as cpu:
                    r = ctx.client(["redis-benchmark", "-p", port, "-t", "set,get", "-n", ctx.s.kv_n,
                                    "-c", clients, "-P", pipe, "-q"], timeout=120)
                if not parse.redis_benchmark_ok(r.text):
                    return {"rps": None, "user_us": None, "sys_us": None, "failed": 1}
                return {"rps": n_req / r.wall_s, "user_us": per(cpu.user_s, n_req), "sys_us": per(cpu.sys_s, n_req),
                        "failed": 0}

            runs = ctx.rounds(section, title, list(servers), measure, idle=idle, clients=clients, pipeline=pipe)
            med = {s: runs.median(s, "rps") for s in servers}
            cpu = {s: add(runs.median(s, "user_us"), runs.median(s, "sys_us")) for s in servers}
            rows += [["", clients, pipe, s, fmt(med[s], 0), fmt(runs.median(s, "user_us")),
                      fmt(runs.median(s, "sys_us")), fmt(cpu[s]), ratio(cpu[s], cpu["redis"]),
                      ratio(med[s], med["redis"]), held.get(s, "-"), f"{runs.total(s, 'failed'):.0f}"]
                     for s in servers]
    ctx.report.table([title, "clients", "pipeline", "server", "req/s", "user µs/req", "sys µs/req", "CPU µs/req",
                      "CPU vs redis", "req/s vs redis", "server fds", "failed runs"], rows)


# --- 5. latency ----------------------------------------------------------------------

def latency(ctx: Ctx) -> None:
    """p50/p99/p99.9 at a fixed rate below saturation, 50 connections: oha
    with latency correction if installed, else h2load's open loop per client."""
    rate, seconds = ctx.s.lat_rate, ctx.s.lat_secs
    oha = tools.oha_path()
    oha_format: list[str] = []
    if oha:
        helptext = run_tool([oha, "--help"]).text
        oha_format = ["--output-format", "json"] if "--output-format" in helptext else ["--json"]
    tool = f"oha -q {rate} --latency-correction" if oha else "h2load"
    log(f"latency: {tool}, {rate} req/s over 50 connections, {secs(seconds)}s, {ctx.s.rounds} rounds")
    title = f"HTTP /hello latency at {rate} req/s ({tool}, 50 conns, {secs(seconds)}s), pinned"
    h2log = ctx.work / "h2load.log"

    def measure_url(url: str) -> Figures:
        if oha:
            r = ctx.client([oha, "-z", f"{secs(seconds)}s", "-c", "50", "-q", rate, "--latency-correction",
                            "--no-tui", *oha_format, url], timeout=seconds + 60)
            got = parse.oha_json(r.text)
        else:
            h2log.unlink(missing_ok=True)
            ctx.client(["h2load", "--h1", "-c", "50", f"--rps={max(1, rate // 50)}", "-D", secs(seconds),
                        f"--log-file={h2log}", url], timeout=seconds + 60)
            got = parse.h2load_log(str(h2log))
        p50, p99, p999, n = got if got else (None, None, None, None)
        return {"p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "requests": n}

    with ExitStack() as stack:
        servers = hello_servers(ctx, stack)
        runs = ctx.rounds("latency", title, list(servers),
                          lambda s: measure_url(f"http://127.0.0.1:{servers[s][1]}/hello"), rate=rate)
    n99 = runs.median("nginx", "p99_ms")
    rows = [["", s, fmt(runs.median(s, "p50_ms"), 3), fmt(runs.median(s, "p99_ms"), 3),
             fmt(runs.median(s, "p999_ms"), 3), fmt(runs.median(s, "requests"), 0),
             ratio(runs.median(s, "p99_ms"), n99)] for s in servers]
    ctx.report.table([title, "server", "p50 ms", "p99 ms", "p99.9 ms", "requests", "p99 vs nginx"], rows)


# --- 6. idle -------------------------------------------------------------------------

def idle(ctx: Ctx) -> None:
    for n in ctx.s.idle_counts:
        http_pinned(ctx, n, "idle")
        kv_pinned(ctx, n, [(50, 1)], "idle")


# --- 7. memory -----------------------------------------------------------------------

def memory(ctx: Ctx) -> None:
    """RSS growth of an echo server (started afresh each run, not pinned) when
    10,000 idle connections are opened to it, per connection."""
    count = 10000
    log(f"memory: RSS of an echo server before and after {count:,} idle connections, {ctx.s.rounds} rounds")
    title = f"RSS per idle connection ({count:,})"
    argv = {f"muxloop_{d}": (9200 + i, lambda p, d=d: [ctx.ex / "echo", f"127.0.0.1:{p}", "--dispatcher", d])
            for i, d in enumerate(ctx.s.backends)}
    argv["libevent_echo"] = (9210, lambda p: [ctx.bin / "libevent_echo", "127.0.0.1", p])
    argv["raw_epoll_echo"] = (9211, lambda p: [ctx.bin / "raw_epoll_echo", "127.0.0.1", p])
    refused: set[str] = set()

    def measure(s: str) -> Figures:
        port, make = argv[s]
        if s in refused:
            return {"bytes_per_conn": None}
        try:
            with ctx.server(s, make(port), port=port, cpu=None) as srv:
                before, fds0 = rss_kib(srv.pid), open_fds(srv.pid)
                with Holder(port, count, ctx.logs) as h:
                    deadline = time.monotonic() + 10
                    while open_fds(srv.pid) < fds0 + h.connected and time.monotonic() < deadline:
                        time.sleep(0.05)
                    time.sleep(0.5)
                    after = rss_kib(srv.pid)
                return {"bytes_per_conn": (after - before) * 1024 / h.connected if h.connected else None,
                        "rss_before_kib": before, "rss_after_kib": after, "connected": h.connected}
        except NotStarted as e:
            warn(f"left out: {e}")
            refused.add(s)
            return {"bytes_per_conn": None}

    runs = ctx.rounds("memory", title, list(argv), measure)
    rows = [[s, fmt(runs.median(s, "bytes_per_conn"), 0)] for s in argv if s not in refused]
    ctx.report.table([title, "bytes"], rows)


# --- 8. udp --------------------------------------------------------------------------

def udp(ctx: Ctx) -> None:
    log(f"udp: udp_echo flood client (64 in flight, {secs(ctx.s.udp_secs)}s), server on cpu {ctx.s.server_cpu}, "
        f"client on cpu {ctx.s.client_cpu}, {ctx.s.rounds} rounds")
    title = "UDP echo datagrams/s"
    rows = []
    with ExitStack() as stack:
        servers = {
            "raw": (stack.enter_context(ctx.server("raw_udp_echo", [ctx.bin / "raw_udp_echo", "127.0.0.1", 9300],
                                                   ready_text="listening on")), 9300),
            "muxloop": (stack.enter_context(ctx.server("udp_echo", [ctx.ex / "udp_echo", "127.0.0.1:9301",
                                                                    "--dispatcher", "epoll"],
                                                       ready_text="listening on")), 9301),
        }
        for size in (64, 1400):
            def measure(s: str) -> Figures:
                r = ctx.client([ctx.ex / "udp_echo", "flood", f"127.0.0.1:{servers[s][1]}", "--seconds",
                                secs(ctx.s.udp_secs), "--size", size, "--inflight", "64"], timeout=ctx.s.udp_secs + 60)
                return {"datagrams_s": parse.key_value(r.text, "datagrams/s"), "lost": parse.key_value(r.text, "lost")}

            runs = ctx.rounds("udp", title, ["raw", "muxloop"], measure, size=size)
            m, r = runs.median("muxloop", "datagrams_s"), runs.median("raw", "datagrams_s")
            lost = runs.total("raw", "lost") + runs.total("muxloop", "lost")
            rows.append(["", size, fmt(m, 0), fmt(r, 0), ratio(m, r), f"{lost:.0f}"])
    ctx.report.table([title, "size", "muxloop epoll", "raw_udp_echo (C)", "muxloop/C", "lost (all runs)"], rows)


# --- 9. unix -------------------------------------------------------------------------

def unix(ctx: Ctx) -> None:
    log(f"unix: muxloop pingpong_client on cpu {ctx.s.client_cpu} against examples/echo (epoll) on cpu "
        f"{ctx.s.server_cpu} over TCP and over a Unix socket, 16 KiB blocks, {secs(ctx.s.echo_secs)}s, "
        f"{ctx.s.rounds} rounds")
    title = "echo over TCP vs Unix, pinned (16 KiB blocks)"
    path = ctx.work / "echo.sock"
    path.unlink(missing_ok=True)
    rows = []
    with ExitStack() as stack:
        servers = {
            "tcp": (stack.enter_context(ctx.server("echo_tcp", [ctx.ex / "echo", "127.0.0.1:9400", "--dispatcher",
                                                                "epoll"], ready_text="listening on")),
                    ["127.0.0.1:9400"]),
            "unix": (stack.enter_context(ctx.server("echo_unix", [ctx.ex / "echo", "--unix", path, "--dispatcher",
                                                                  "epoll"], ready_text="listening on")),
                     ["--unix", path]),
        }
        for sessions in ctx.s.echo_sessions:
            runs = ctx.rounds("unix", title, ["tcp", "unix"],
                              lambda t: pingpong_mux(ctx, servers[t][0], servers[t][1], sessions, 16384).per_mib(),
                              sessions=sessions)
            tcp = runs.median("tcp", "mib_s")
            for t in ("tcp", "unix"):
                m = runs.median(t, "mib_s")
                rows.append(["", sessions, t, fmt(m, 1), fmt(runs.median(t, "user_us_per_mib")),
                             fmt(runs.median(t, "sys_us_per_mib")), ratio(m, tcp)])
    path.unlink(missing_ok=True)
    ctx.report.table([title, "sessions", "transport", "MiB/s", "user µs/MiB", "sys µs/MiB", "vs TCP"], rows)


# --- 10. proxy -----------------------------------------------------------------------

def proxy(ctx: Ctx) -> None:
    """Client and upstream echo share CLIENT_CPU; only the proxy is on
    SERVER_CPU, so its CPU per GiB is what differs. Every echoed byte crosses
    the proxy twice."""
    log(f"proxy: pingpong_client -> proxy (cpu {ctx.s.server_cpu}) -> echo (cpu {ctx.s.client_cpu}), 64 KiB blocks, "
        f"{secs(ctx.s.echo_secs)}s, {ctx.s.rounds} rounds")
    title = "proxy, pinned (64 KiB blocks)"
    rows = []
    with ExitStack() as stack:
        stack.enter_context(ctx.server("upstream_echo", [ctx.ex / "echo", "127.0.0.1:9500", "--dispatcher", "epoll"],
                                       port=9500, cpu="client"))
        servers = {m: (stack.enter_context(ctx.server(f"proxy_{m}", [
            ctx.ex / "proxy", f"127.0.0.1:{port}", "127.0.0.1:9500", f"--{m}"], port=port)), port)
            for m, port in (("copy", 9501), ("splice", 9502))}
        for streams in ctx.s.proxy_streams:
            def measure(m: str) -> Figures:
                e = pingpong_mux(ctx, servers[m][0], [f"127.0.0.1:{servers[m][1]}"], streams, 65536)
                gib = e.mib * 2 / 1024 if e.mib else None  # relayed, both directions
                return {"mib_s": e.mib_s, "user_s_per_gib": per(e.user_s, gib, 1), "sys_s_per_gib": per(e.sys_s, gib, 1),
                        "failed": e.failed}

            runs = ctx.rounds("proxy", title, ["copy", "splice"], measure, streams=streams)
            cpu = {m: add(runs.median(m, "user_s_per_gib"), runs.median(m, "sys_s_per_gib")) for m in servers}
            for m in servers:
                rows.append(["", streams, m, fmt(runs.median(m, "mib_s"), 1), fmt(runs.median(m, "user_s_per_gib")),
                             fmt(runs.median(m, "sys_s_per_gib")), fmt(cpu[m]), ratio(cpu[m], cpu["copy"])])
    ctx.report.table([title, "streams", "mode", "MiB/s echoed", "proxy user s/GiB", "proxy sys s/GiB",
                      "proxy CPU s/GiB", "CPU vs copy"], rows)


# --- 11. edge ------------------------------------------------------------------------

def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def edge(ctx: Ctx) -> None:
    """One binary, --trigger level vs --trigger edge (epoll): the same pinned
    http and echo runs; what matters is the server's sys µs per request."""
    log(f"edge vs level: http_server and echo on epoll, --trigger level|edge, pinned, {ctx.s.rounds} rounds")
    modes = ["level", "edge"]
    title = "HTTP /hello, epoll, pinned, wrk -t1 -c100"
    with ExitStack() as stack:
        servers = {t: (stack.enter_context(ctx.server(f"http_{t}", [
            ctx.ex / "http_server", f"127.0.0.1:{port}", "--threads", "0", "--dispatcher", "epoll", "--trigger", t],
            port=port)), port) for t, port in (("level", 8192), ("edge", 8193))}
        runs = ctx.rounds("edge", title, modes, lambda t: {"load1": load1(), **wrk_run(
            ctx, servers[t][0], f"http://127.0.0.1:{servers[t][1]}/hello", ctx.s.http_secs)})
    rows = []
    for t in modes:
        mu, my = runs.median(t, "user_us"), runs.median(t, "sys_us")
        rows.append(["", t, fmt(runs.median(t, "rps")), fmt(mu), fmt(my), fmt(add(mu, my)),
                     " ".join(fmt(v) for v in runs.values(t, "rps")) + "; " +
                     " ".join(fmt(v) for v in runs.values(t, "sys_us")),
                     " ".join(fmt(v) for v in runs.values(t, "load1"))])
    ctx.report.table([title, "trigger", "req/s", "user µs/req", "sys µs/req", "CPU µs/req",
                      "runs: req/s; sys µs/req", "1-min load at each run"], rows)

    title = "echo, epoll, pinned, pingpong 100 x 16 KiB"
    with ExitStack() as stack:
        servers = {t: (stack.enter_context(ctx.server(f"echo_{t}", [
            ctx.ex / "echo", f"127.0.0.1:{port}", "--dispatcher", "epoll", "--trigger", t], port=port)), port)
            for t, port in (("level", 9192), ("edge", 9193))}

        def measure(t: str) -> Figures:
            load = load1()
            e = pingpong_c(ctx, servers[t][0], servers[t][1], 100)
            blocks = e.mib * 64 if e.mib else None  # 16 KiB blocks echoed
            return {"load1": load, "mib_s": e.mib_s, "user_us_per_block": per(e.user_s, blocks),
                    "sys_us_per_block": per(e.sys_s, blocks), "failed": e.failed}

        runs = ctx.rounds("edge", title, modes, measure)
    rows = []
    for t in modes:
        mu, my = runs.median(t, "user_us_per_block"), runs.median(t, "sys_us_per_block")
        rows.append(["", t, fmt(runs.median(t, "mib_s"), 1), fmt(mu), fmt(my), fmt(add(mu, my)),
                     " ".join(fmt(v, 1) for v in runs.values(t, "mib_s")) + "; " +
                     " ".join(fmt(v) for v in runs.values(t, "sys_us_per_block")),
                     " ".join(fmt(v) for v in runs.values(t, "load1"))])
    ctx.report.table([title, "trigger", "MiB/s", "user µs/block", "sys µs/block", "CPU µs/block",
                      "runs: MiB/s; sys µs/block", "1-min load at each run"], rows)


# --- 12. files -----------------------------------------------------------------------

def sha256_of(chunks) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def files(ctx: Ctx) -> None:
    """One large file by sendfile: nginx (1 worker, sendfile on, tcp_nopush on)
    vs http_server --root (epoll, one loop), both on SERVER_CPU, wrk -t1 -c10
    on CLIENT_CPU fetching it over and over. On loopback wrk (8 KiB reads) is
    the bottleneck, so MiB/s follows the CPU share wrk gets; the table also
    gives wrk's own CPU seconds and the MiB per wrk CPU second, which does not."""
    prefix = ctx.work / "files-root"
    big = prefix / "files" / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    size = ctx.s.files_mib << 20
    if not big.exists() or big.stat().st_size != size:
        with open(big, "wb") as f:
            for _ in range(ctx.s.files_mib):
                f.write(os.urandom(1 << 20))

    def read_file():
        with open(big, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    digest = sha256_of(read_file())  # also puts it in the page cache for both servers
    log(f"files: taskset -c {ctx.s.client_cpu} wrk -t1 -c10 -d{secs(ctx.s.files_secs)}s /files/big.bin "
        f"({ctx.s.files_mib} MiB), {ctx.s.rounds} rounds")
    title = f"files: {ctx.s.files_mib} MiB file, wrk -c10, pinned"
    with ExitStack() as stack:
        servers = {
            "nginx": (stack.enter_context(nginx(ctx, "files.conf", prefix, 8097, 1)), 8097),
            "muxloop_epoll": (stack.enter_context(ctx.server("muxloop_epoll", [
                ctx.ex / "http_server", "127.0.0.1:8096", "--threads", "0", "--dispatcher", "epoll",
                "--root", big.parent], port=8096)), 8096),
        }
        for s, (_, port) in servers.items():  # both must serve the same bytes
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/files/big.bin", timeout=60) as resp:
                    intact = sha256_of(iter(lambda: resp.read(1 << 20), b"")) == digest
            except OSError as e:
                intact = False
                warn(f"{s}: {e}")
            if not intact:
                warn(f"{s} does not serve the file intact")

        def measure(s: str) -> Figures:
            srv, port = servers[s]
            with CpuMeter(srv.pid) as cpu:
                r = ctx.client(["wrk", "-t1", "-c10", f"-d{secs(ctx.s.files_secs)}s", "--timeout", "30s",
                                f"http://127.0.0.1:{port}/files/big.bin"], timeout=ctx.s.files_secs + 90)
            w = parse.wrk(r.text)
            mib = w["bytes"] / (1 << 20) if w["bytes"] else None
            wrk_cpu = r.user_s + r.sys_s  # wrk's own, from wait4
            return {"mib_s": mib / w["secs"] if mib and w["secs"] else None,
                    "user_us_per_mib": per(cpu.user_s, mib), "sys_us_per_mib": per(cpu.sys_s, mib),
                    "wrk_cpu_s": wrk_cpu, "mib_per_wrk_cpu_s": mib / wrk_cpu if mib and wrk_cpu > 0 else None,
                    "errors": w["errors"]}

        runs = ctx.rounds("files", title, list(servers), measure)
    med, gib, pc = {}, {}, {}
    rows = []
    for s in servers:
        mu, my = runs.median(s, "user_us_per_mib"), runs.median(s, "sys_us_per_mib")
        med[s] = runs.median(s, "mib_s")
        gib[s] = add(mu, my) * 1024 / 1e6 if add(mu, my) is not None else None
        pc[s] = runs.median(s, "mib_per_wrk_cpu_s")
        rows.append(["", s, fmt(med[s], 0), fmt(mu), fmt(my), fmt(gib[s], 3), fmt(runs.median(s, "wrk_cpu_s")),
                     fmt(pc[s], 0), ratio(med[s], med["nginx"]), ratio(gib[s], gib["nginx"]),
                     f"{runs.total(s, 'errors'):.0f}"])
    ctx.report.table([title, "server", "MiB/s", "user µs/MiB", "sys µs/MiB", "CPU s/GiB", "wrk CPU s",
                      "MiB per wrk CPU s", "MiB/s vs nginx", "CPU vs nginx", "errors+non-2xx"], rows)
    e = "muxloop_epoll"
    ctx.report.line("")
    ctx.report.line(f"Target (files): MiB/s vs nginx {ratio(med[e], med['nginx'])} (>= 1; per wrk CPU second "
                    f"{ratio(pc[e], pc['nginx'])}), CPU/GiB vs nginx {ratio(gib[e], gib['nginx'])} (<= 1)")


RUN = {"dispatch": dispatch, "echo": echo, "http": http, "kv": kv, "latency": latency, "idle": idle,
       "memory": memory, "udp": udp, "unix": unix, "proxy": proxy, "edge": edge, "files": files}


# --- main ----------------------------------------------------------------------------

def binaries_needed(ctx: Ctx, sections: list[str]) -> list[Path]:
    out = [ctx.bin / name for name in tools.c_peers_for(sections)]
    if tools.RUST_PEER_SECTIONS & set(sections):
        out += [ctx.rust / "tokio_echo", ctx.rust / "hyper_hello"]
    examples = {"dispatch": ["backends"], "echo": ["echo"], "http": ["http_server"], "kv": ["kv"],
                "latency": ["http_server"], "idle": ["http_server", "kv"], "memory": ["echo"],
                "udp": ["udp_echo"], "unix": ["echo", "pingpong_client"], "proxy": ["echo", "proxy", "pingpong_client"],
                "edge": ["http_server", "echo"], "files": ["http_server"]}
    out += sorted({ctx.ex / e for s in sections for e in examples[s]})
    return out


def raise_nofile(want: int = 20000) -> None:
    """Servers and clients inherit it: 10,000 idle connections and 9,000 ring pairs need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < want:
        warn(f"the open-file hard limit is {hard}; memory, idle and dispatch at N=9000 need about {want}")


def header(ctx: Ctx) -> None:
    s = ctx.s
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    settings = " ".join(f"{env}={' '.join(map(str, v)) if isinstance(v, list) else format(v, 'g') if isinstance(v, float) else v}"
                        for env in ("ROUNDS", "ECHO_SECS", "HTTP_SECS", "UDP_SECS", "KV_N", "LAT_RATE", "LAT_SECS",
                                    "FILES_SECS", "FILES_MIB", "ECHO_SESSIONS", "IDLE_COUNTS", "PROXY_STREAMS",
                                    "BACKENDS")
                        for v in [getattr(s, env.lower())])
    ctx.report.line(f"# muxloop vs peers — {now}, medians of {s.rounds} rounds")
    ctx.report.line("")
    ctx.report.line(f"Machine: {os.cpu_count()} cores ({model}), kernel {os.uname().release}, load average at start "
                    f"{load}; server on cpu {s.server_cpu}, load generator on cpu {s.client_cpu}; command: "
                    f"compare.py {' '.join(s.sections)} ({settings})")


def on_sigterm(signum, frame) -> None:
    """SIGTERM ends the run like Ctrl-C: every `with` block stops its servers on the way out."""
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    s = parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    work = s.work.resolve()
    for d in ("bin", "logs"):
        (work / d).mkdir(parents=True, exist_ok=True)
    tools.ensure_tools(s.sections, building=not s.skip_build)
    if not s.skip_build:
        tools.build(ROOT, work / "bin", s.sections)
    ctx = Ctx(s, work, work / "logs", work / "bin",
              tools.target_dir(ROOT / "Cargo.toml") / "release" / "examples",
              tools.target_dir(ROOT / "peers" / "Cargo.toml") / "release",
              Report(work / "results.md"), Recorder(work))
    tools.check_built(binaries_needed(ctx, s.sections))
    raise_nofile()
    status = 0
    try:
        header(ctx)
        for section in s.sections:
            try:
                RUN[section](ctx)
            except NotStarted as e:
                status = 1
                warn(f"section {section} failed: {e}")
                ctx.report.line("")
                ctx.report.line(f"**{section}: not measured**: {e}")
            finally:
                ctx.rec.write()
    except KeyboardInterrupt:
        warn("interrupted; every server started was stopped")
        status = 130
    finally:
        ctx.report.close()
    log(f"results in {work / 'results.md'}; every run in {ctx.rec.csv_path} and {ctx.rec.json_path}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
