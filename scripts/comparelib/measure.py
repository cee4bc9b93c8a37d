"""The method, in one place: run every subject once per round, the order
reversed every other round (A/B alternation, so drift in the machine's load
does not favour whoever runs first), keep every raw figure, and report medians."""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

Figures = dict[str, float | None]


def median(values: Iterable[float | None]) -> float | None:
    """Median of the numbers among `values` (None and NaN, a failed run, left out); None if none."""
    xs = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(xs) if xs else None


def fmt(v: float | int | str | None, digits: int = 2) -> str:
    """A table cell: '-' for nothing, the number with `digits` decimals."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and math.isnan(v):
        return "-"
    return f"{v:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def per(seconds: float, units: float | None, scale: float = 1e6) -> float | None:
    """CPU `seconds` per unit (request, MiB, ...), in µs by default; None if nothing was served."""
    if not units or units <= 0:
        return None
    return seconds * scale / units


@dataclass
class Runs:
    """Every figure of every run, by subject; medians on demand."""
    subjects: list[str]
    figures: dict[str, list[Figures]] = field(default_factory=dict)

    def add(self, subject: str, figures: Figures) -> None:
        self.figures.setdefault(subject, []).append(figures)

    def values(self, subject: str, key: str) -> list[float | None]:
        return [f.get(key) for f in self.figures.get(subject, [])]

    def median(self, subject: str, key: str) -> float | None:
        return median(self.values(subject, key))

    def total(self, subject: str, key: str) -> float:
        return sum(v for v in self.values(subject, key) if v is not None)


class Recorder:
    """Every raw measurement, written as CSV (one row per figure) and JSON."""

    def __init__(self, work: Path):
        self.csv_path = work / "measurements.csv"
        self.json_path = work / "measurements.json"
        self.records: list[dict] = []

    def add(self, section: str, table: str, params: dict, subject: str, round_: int,
            position: int, figures: Figures) -> None:
        self.records.append({"section": section, "table": table, "params": params, "subject": subject,
                             "round": round_, "position": position, "figures": figures})

    def write(self) -> None:
        """Rewritten after every section, so an interrupted run keeps what it measured."""
        self.json_path.write_text(json.dumps(self.records, indent=1) + "\n")
        with open(self.csv_path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["section", "table", "params", "subject", "round", "position", "figure", "value"])
            for r in self.records:
                params = " ".join(f"{k}={v}" for k, v in r["params"].items())
                for k, v in r["figures"].items():
                    w.writerow([r["section"], r["table"], params, r["subject"], r["round"], r["position"], k,
                                "" if v is None else v])


def alternate(rounds: int, subjects: list[str], measure: Callable[[str], Figures], *,
              recorder: Recorder, section: str, table: str, params: dict | None = None,
              progress: Callable[[str], None] | None = None) -> Runs:
    """The one measuring loop of compare.py.

    For round 1..rounds, calls measure(subject) for every subject, in the
    given order on odd rounds and reversed on even ones; records each call's
    figures (a dict, None for a figure that run could not give) and returns
    them all, for medians."""
    runs = Runs(list(subjects))
    params = params or {}
    for rnd in range(1, rounds + 1):
        order = subjects if rnd % 2 else list(reversed(subjects))
        for position, subject in enumerate(order):
            figures = measure(subject)
            runs.add(subject, figures)
            recorder.add(section, table, params, subject, rnd, position, figures)
            if progress:
                shown = " ".join(f"{k}={fmt(v)}" for k, v in figures.items())
                where = " ".join(f"{k}={v}" for k, v in params.items())
                progress(f"{section} round {rnd}/{rounds} {where} {subject}: {shown}".replace("  ", " "))
    return runs
