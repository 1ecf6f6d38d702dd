"""Sweep stage 2 for plates: new plate reads vs the active plate entries (exact,
confusion-aware and pattern matches), indexed once per sweep."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from citywatch.plates import CONFUSABLE_PAIRS, PlateQuery, match_score, normalise_plate, parse_plate_query
from citywatch.schemas import AlertRow, EntryKind, WatchlistRow
from citywatch.tasks.sweep.passes import alert_for, best_per_track


def _confusable_classes() -> dict[str, str]:
    """Character -> representative of its class under the confusable pairs (union-find)."""
    parent: dict[str, str] = {}

    def find(ch: str) -> str:
        while parent.setdefault(ch, ch) != ch:
            ch = parent[ch]
        return ch

    for a, b in CONFUSABLE_PAIRS:
        parent[find(a)] = find(b)
    return {ch: find(ch) for ch in parent}


_CANON = _confusable_classes()  # O/0/D, I/1, B/8, S/5, Z/2, G/6


def canonical_plate(text: str) -> str:
    """Each character replaced by its confusable class (equal under swaps only)."""
    return "".join(_CANON.get(ch, ch) for ch in text)


def _near_pattern(query: PlateQuery) -> str:
    """Regex over canonical text that every read within distance < 1.0 of ``query`` fits."""
    parts = []
    for ch in query.text:
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(_CANON.get(ch, ch)))
    return "".join(parts)


@dataclass
class PlateMatcher:
    """Plate entries indexed once per sweep, so 10,000 reads x 1,000 entries stays cheap.

    Under a distance of 1.0 only confusable substitutions fit (any other edit costs
    1.0), so a read can only match an entry whose confusable-class form it shares:
    exact plates are a dict lookup, patterns one combined regex that rejects most
    reads at once. Entries with a looser threshold are scanned (with a length bound).
    """

    by_class: dict[str, list[tuple[WatchlistRow, PlateQuery]]] = field(default_factory=dict)
    patterns: list[tuple[WatchlistRow, PlateQuery, re.Pattern[str]]] = field(default_factory=list)
    any_pattern: re.Pattern[str] | None = None
    scanned: list[tuple[WatchlistRow, PlateQuery]] = field(default_factory=list)

    @classmethod
    def build(cls, entries: Sequence[WatchlistRow]) -> PlateMatcher:
        matcher = cls()
        for entry in entries:
            if entry.kind != EntryKind.PLATE:
                continue
            query = parse_plate_query(entry.plate_query, max_edits=entry.threshold)
            if entry.threshold >= 1.0:
                matcher.scanned.append((entry, query))
            elif query.is_pattern:
                matcher.patterns.append((entry, query, re.compile(_near_pattern(query))))
            else:
                matcher.by_class.setdefault(canonical_plate(query.text), []).append((entry, query))
        if matcher.patterns:
            matcher.any_pattern = re.compile("|".join(f"(?:{p.pattern})" for _, _, p in matcher.patterns))
        return matcher

    def __bool__(self) -> bool:
        return bool(self.by_class or self.patterns or self.scanned)

    def matches(self, text: str) -> list[tuple[WatchlistRow, float]]:
        plate = normalise_plate(text)
        canon = canonical_plate(plate)
        candidates = list(self.by_class.get(canon, ()))
        if self.any_pattern is not None and self.any_pattern.fullmatch(canon):
            candidates += [(e, q) for e, q, p in self.patterns if p.fullmatch(canon)]
        candidates += [
            (e, q) for e, q in self.scanned if q.is_pattern or abs(len(q.text) - len(plate)) <= e.threshold
        ]
        out = []
        for entry, query in candidates:
            score = match_score(query, plate)
            if score is not None:
                out.append((entry, score))
        return out


def match_plates(
    rows: pa.Table,
    entries: Sequence[WatchlistRow],
    now: dt.datetime,
    is_plate: Callable[[str, float | None], bool] | None = None,
) -> list[AlertRow]:
    """Alerts for the plate ``rows`` that match an entry. ``is_plate(text, gate_score)``:
    the plate acceptance rule (citywatch/plate_gate.py ``accepts_row``); a row it refuses
    (a sign, a badge read as text) never alerts."""
    matcher = PlateMatcher.build(entries)
    if not rows.num_rows or not matcher:
        return []
    found = [
        alert_for(entry, row, score, start="first_ts", end="last_ts", plate_text=row["text"], now=now)
        for row in rows.to_pylist()
        if is_plate is None or is_plate(row["text"] or "", row.get("gate_score"))
        for entry, score in matcher.matches(row["text"] or "")
    ]
    return best_per_track(found)
