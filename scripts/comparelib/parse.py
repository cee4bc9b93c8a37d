"""What the load tools print, turned into numbers (None where a run gave nothing)."""

from __future__ import annotations

import json
import re

_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def key_value(text: str, key: str) -> float | None:
    """The number after `key=` (pingpong_client, udp_echo flood: 'MiB/s=123.4 failed=0')."""
    m = re.search(re.escape(key) + r"=([0-9.]+)", text)
    return float(m.group(1)) if m else None


def wrk(text: str) -> dict:
    """requests, seconds, bytes read, req/s, and socket errors + non-2xx answers."""
    out = {"requests": None, "secs": None, "bytes": None, "rps": None, "errors": 0}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+)([KMGT]?B) read", text, re.M)
    if m:
        out["requests"] = int(m.group(1))
        out["secs"] = float(m.group(2)) * _TIME[m.group(3)]
        out["bytes"] = float(m.group(4)) * _UNITS[m.group(5)]
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Socket errors:(.*)", text)
    if m:
        out["errors"] += sum(int(n) for n in re.findall(r"\d+", m.group(1)))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["errors"] += int(m.group(1))
    return out


def redis_benchmark_ok(text: str) -> bool:
    """Both tests (set, get) finished: two 'requests per second' lines (-q, \\r-separated)."""
    return text.replace("\r", "\n").count("requests per second") >= 2


def oha_json(text: str) -> tuple[float, float, float, int] | None:
    """p50, p99, p99.9 in ms and the number of answers, from `oha --json`."""
    try:
        d = json.loads(text[text.index("{"):])
    except ValueError:
        return None
    p = d.get("latencyPercentiles") or {}
    if not all(k in p for k in ("p50", "p99", "p99.9")):
        return None
    n = sum(d.get("statusCodeDistribution", {}).values())
    return p["p50"] * 1e3, p["p99"] * 1e3, p["p99.9"] * 1e3, n


def h2load_log(path: str) -> tuple[float, float, float, int] | None:
    """p50, p99, p99.9 in ms and the count, from h2load's --log-file
    (start time, status, latency in µs: tab-separated, one request a line)."""
    lat = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[2].strip().isdigit():
                    lat.append(int(parts[2]))
    except OSError:
        return None
    if not lat:
        return None
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] / 1e3  # noqa: E731
    return q(0.5), q(0.99), q(0.999), len(lat)
