"""Processes: servers under test (context managers that always stop them),
load tools run to completion, and what /proc says about a server's CPU time,
memory and open files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 10.0  # seconds a server gets to listen


def log(msg: str) -> None:
    """Progress and warnings go to stderr; tables go to stdout."""
    print(f"\n### {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pinned(cpu: str | None, argv: list[str]) -> list[str]:
    """argv run on CPU `cpu` (taskset execs the program, so the pid is the program's)."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class NotStarted(Exception):
    """A server exited or never got ready (e.g. a backend this kernel refuses)."""


class Server:
    """A server process for the length of a `with` block.

    Started in its own session (so a Ctrl-C at the terminal does not reach it
    and its whole process group, nginx's workers included, can be stopped at
    once); ready when `port` accepts a connection, or when its log shows
    `ready_text` (UDP and Unix-socket servers have no TCP port to probe).
    Leaving the block, normally, by an exception or by Ctrl-C, stops it:
    SIGTERM to the group, SIGKILL after 5 s.
    """

    def __init__(self, name: str, argv: list[str], logs: Path, *, port: int | None = None,
                 ready_text: str | None = None, cpu: str | None = None):
        if port is None and ready_text is None:
            raise ValueError("a server needs a port or a ready_text to wait for")
        self.name, self.argv, self.port, self.ready_text = name, pinned(cpu, argv), port, ready_text
        self.log_path = logs / f"{name}-{port or 'x'}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def _ready(self) -> bool:
        if self.ready_text is not None:
            try:
                return self.ready_text in self.log_path.read_text(errors="replace")
            except OSError:
                return False
        return port_open(self.port)

    def __enter__(self) -> "Server":
        if self.port is not None and port_open(self.port):
            raise NotStarted(f"{self.name}: port {self.port} is already taken by another process "
                             f"(a server left from an earlier run?)")
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                if self.proc.poll() is not None:
                    raise NotStarted(f"{self.name} exited with status {self.proc.returncode}: "
                                     f"{self.last_log_line() or '(no output)'}")
                if self._ready():
                    return self
                if time.monotonic() > deadline:
                    what = f"nothing listens on port {self.port}" if self.port else f"no '{self.ready_text}' line"
                    raise NotStarted(f"{self.name}: {what} after {START_TIMEOUT:.0f} s; log: {self.log_path}")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        p = self.proc
        if p is None or p.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Anything of its group still alive (a worker that outlived its master).
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class ToolRun:
    """A load tool's output (stdout and stderr together), exit status and CPU seconds."""
    text: str
    status: int
    user_s: float
    sys_s: float
    wall_s: float


def run_tool(argv: list[str], cpu: str | None = None, timeout: float | None = None) -> ToolRun:
    """Runs a load tool to the end (pinned to `cpu` if given). Its own CPU time
    comes from wait4(2), its wall time from around it. A tool that outlives
    `timeout` is killed (status -9). Missing programs raise FileNotFoundError."""
    argv = pinned(cpu, argv)
    with tempfile.TemporaryFile() as out:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, p.kill) if timeout else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            p.wait()
            raise
        finally:
            if timer:
                timer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return ToolRun(text, p.returncode, usage.ru_utime, usage.ru_stime, wall)


# --- /proc ------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after "pid (comm) ": [0] state, [1] ppid, [11] utime, [12] stime."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def family(pid: int) -> list[int]:
    """The process and all its descendants (nginx: master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(int(entry))
            if f:
                children.setdefault(int(f[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


@dataclass
class Ticks:
    user: int
    sys: int


def cpu_ticks(pid: int) -> Ticks:
    """utime and stime of the process and its descendants, in clock ticks."""
    t = Ticks(0, 0)
    for p in family(pid):
        f = _stat_fields(p)
        if f:
            t.user += int(f[11])
            t.sys += int(f[12])
    return t


class CpuMeter:
    """`with CpuMeter(pid) as m: ...` then m.user_s, m.sys_s: the server's CPU
    seconds (its whole family) spent inside the block."""

    def __init__(self, pid: int):
        self.pid = pid
        self.user_s = self.sys_s = 0.0

    def __enter__(self) -> "CpuMeter":
        self.before = cpu_ticks(self.pid)
        return self

    def __exit__(self, *exc) -> None:
        after = cpu_ticks(self.pid)
        self.user_s = (after.user - self.before.user) / CLK_TCK
        self.sys_s = (after.sys - self.before.sys) / CLK_TCK


def open_fds(pid: int) -> int:
    """Open files of the process and its descendants."""
    n = 0
    for p in family(pid):
        try:
            n += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return n


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Holder:
    """`count` idle connections to `port`, held by a helper process
    (comparelib/hold.py) for the length of a `with` block."""

    def __init__(self, port: int, count: int, logs: Path):
        self.port, self.count, self.logs = port, count, logs
        self.proc: subprocess.Popen | None = None
        self.connected = self.failed = 0

    def __enter__(self) -> "Holder":
        script = Path(__file__).with_name("hold.py")
        err = open(self.logs / f"hold-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.port), str(self.count)],
                                     stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                     start_new_session=True, text=True)
        err.close()
        line = [""]
        reader = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()), daemon=True)
        reader.start()
        try:
            reader.join(120)
        except BaseException:
            self.__exit__()
            raise
        words = line[0].split()
        if len(words) == 4 and words[0] == "connected":
            self.connected, self.failed = int(words[1]), int(words[3])
            warn(f"holder on {self.port}: connected {self.connected} failed {self.failed}")
        else:
            warn(f"holder on {self.port}: no answer in 120 s (see {self.logs}/hold-{self.port}.log)")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
