"""The CLI's output layer: results to stdout (text or JSON), nothing else prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence


def line(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(text: str) -> None:
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def as_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    line("  ".join("-" * w for w in widths))
    for row in cells:
        line("  ".join(c.ljust(w) for c, w in zip(row, widths)))
