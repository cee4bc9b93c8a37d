"""What the chosen sections need on the machine, installing what is missing
(as root with apt-get, Debian packages), and building the peers and examples."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .procs import log


@dataclass(frozen=True)
class Need:
    what: str           # a command on PATH, or an absolute file path (a header)
    package: str        # the Debian package that brings it
    sections: frozenset  # sections that need it ("*": all)

    def present(self) -> bool:
        return Path(self.what).exists() if self.what.startswith("/") else shutil.which(self.what) is not None


def _n(what: str, package: str, sections: str) -> Need:
    return Need(what, package, frozenset(sections.split()))


NEEDS = [
    _n("taskset", "util-linux", "*"),
    _n("gcc", "gcc", "dispatch echo memory udp edge"),
    _n("/usr/include/event2/event.h", "libevent-dev", "dispatch echo memory"),
    _n("nginx", "nginx-light", "http latency idle files"),
    _n("wrk", "wrk", "http idle edge files"),
    _n("redis-server", "redis-server", "kv idle"),
    _n("redis-benchmark", "redis-tools", "kv idle"),
]

# The C peers (peers/c/NAME.c) each section runs, and what they link.
C_PEERS = {
    "libevent_ring": (["-levent_core"], {"dispatch"}),
    "raw_epoll_echo": ([], {"echo", "memory"}),
    "libevent_echo": (["-levent_core"], {"echo", "memory"}),
    "pingpong_client": ([], {"echo", "edge"}),
    "raw_udp_echo": ([], {"udp"}),
}
RUST_PEER_SECTIONS = {"echo", "http", "latency", "idle"}  # tokio_echo, hyper_hello


def oha_path() -> str | None:
    """oha (cargo install oha --locked) on PATH or in ~/.cargo/bin, for the latency section."""
    found = shutil.which("oha")
    if found:
        return found
    home = Path.home() / ".cargo" / "bin" / "oha"
    return str(home) if os.access(home, os.X_OK) else None


def missing(sections: list[str]) -> list[Need]:
    chosen = set(sections)
    out = [n for n in NEEDS if ("*" in n.sections or n.sections & chosen) and not n.present()]
    if "latency" in chosen and not oha_path() and not shutil.which("h2load"):
        out.append(_n("h2load", "nghttp2-client", "latency"))
    return out


def ensure_tools(sections: list[str], building: bool = True) -> None:
    """Every program the sections need, or SystemExit naming what is missing;
    as root with apt-get, missing Debian packages are installed first."""
    gone = missing(sections)
    if gone and os.geteuid() == 0 and shutil.which("apt-get"):
        packages = sorted({n.package for n in gone})
        log(f"installing {' '.join(packages)} (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=False, env=env,
                       stdout=subprocess.DEVNULL)
        gone = missing(sections)
    if gone:
        lines = [f"  {n.what}: Debian package {n.package}; needed by "
                 f"{'every section' if '*' in n.sections else ' '.join(sorted(n.sections & set(sections)))}"
                 for n in gone]
        raise SystemExit("missing:\n" + "\n".join(lines) +
                         "\ninstall them (apt-get install " + " ".join(sorted({n.package for n in gone})) +
                         "), or run as root where apt-get can")
    if building and not shutil.which("cargo"):
        raise SystemExit("missing: cargo (Rust's toolchain, https://rustup.rs): it builds muxloop's examples")


def target_dir(manifest: Path) -> Path:
    """Where cargo puts a workspace's builds (honours CARGO_TARGET_DIR and config)."""
    try:
        out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps",
                              "--manifest-path", str(manifest)],
                             check=True, capture_output=True, text=True).stdout
        return Path(json.loads(out)["target_directory"])
    except (subprocess.CalledProcessError, FileNotFoundError, KeyError, ValueError):
        return manifest.parent / "target"


def c_peers_for(sections: list[str]) -> list[str]:
    return [name for name, (_, used_by) in C_PEERS.items() if used_by & set(sections)]


def build(root: Path, bin_dir: Path, sections: list[str]) -> None:
    """gcc the C peers the sections use into bin_dir, cargo build the Rust peers
    (only for the sections that run them: tokio and hyper take minutes the
    first time) and muxloop's examples, all in release mode."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    peers = c_peers_for(sections)
    if peers:
        log(f"building C peers into {bin_dir}: {' '.join(peers)}")
    for name in peers:
        libs, _ = C_PEERS[name]
        src = root / "peers" / "c" / f"{name}.c"
        cmd = ["gcc", "-O2", "-Wall", "-o", str(bin_dir / name), str(src), *libs]
        if subprocess.run(cmd).returncode != 0:
            raise SystemExit(f"building {src} failed: {' '.join(cmd)}")
    if RUST_PEER_SECTIONS & set(sections):
        log("building the Rust peers (cargo build --release --manifest-path peers/Cargo.toml)")
        _cargo(["build", "--release", "-q", "--manifest-path", str(root / "peers" / "Cargo.toml")], root)
    log("building muxloop's examples (cargo build --release --examples)")
    _cargo(["build", "--release", "-q", "--examples"], root)


def _cargo(args: list[str], cwd: Path) -> None:
    if subprocess.run(["cargo", *args], cwd=cwd).returncode != 0:
        raise SystemExit(f"cargo {' '.join(args)} failed")


def check_built(paths: list[Path]) -> None:
    """With SKIP_BUILD: every binary the sections run must already be there."""
    absent = [str(p) for p in paths if not os.access(p, os.X_OK)]
    if absent:
        raise SystemExit("SKIP_BUILD is set but these are not built:\n  " + "\n  ".join(absent) +
                         "\nrun once without SKIP_BUILD")
