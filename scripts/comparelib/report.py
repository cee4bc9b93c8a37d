"""Markdown output: every line to stdout and to WORK/results.md as it is made."""

from __future__ import annotations

from pathlib import Path


class Report:
    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "w")

    def line(self, text: str = "") -> None:
        print(text, flush=True)
        self.file.write(text + "\n")
        self.file.flush()

    def table(self, header: list[str], rows: list[list[str]], blank_before: bool = True) -> None:
        """A Markdown table; the first header cell is the table's title."""
        if blank_before:
            self.line("")
        self.line(_cells(header))
        self.line("|" + "---|" * len(header))
        for row in rows:
            self.line(_cells(row))

    def close(self) -> None:
        self.file.close()


def _cells(cells: list) -> str:
    """'| a | b |', an empty cell as '| |' (as the README's tables have it)."""
    return "|" + "|".join(f" {c} " if str(c) else " " for c in cells) + "|"
