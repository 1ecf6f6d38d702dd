"""Plate search's distinct-texts tables (tasks/plate_texts.py, tasks/search/plates.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from citywatch.schemas.core import TS


@dataclass(frozen=True, slots=True)
class PlateTextRow:
    """One distinct plate text read on one UTC day. Plate search ranks these (a city's
    plates repeat: thousands of texts a day, not millions of passes), then reads the
    passes of the texts that match. Written before the passes; a text whose passes are
    gone matches nothing, so extra rows are harmless, missing ones are not."""

    id: str  # "<YYYY-MM-DD>|<text>" ("-|<text>" for a pass without a time)
    day: dt.datetime | None  # 00:00 UTC of the passes' day
    text: str

    TABLE: ClassVar[str] = "plate_texts"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("day", TS),
            pa.field("text", pa.string()),
        ]
    )


@dataclass(frozen=True, slots=True)
class PlateTextsMarkRow:
    """``plate_texts`` holds every plate pass's (day, text): the store was new when the
    texts table was made, or the backfill read the whole ``plates`` table at that version.
    Without this row, search scans the plates themselves."""

    id: str  # "plates": the source table
    plates_version: int  # the plates table version the backfill read (0: a new store)
    texts: int  # day|text rows the backfill found
    completed_at: dt.datetime

    TABLE: ClassVar[str] = "plate_texts_state"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("plates_version", pa.int64()),
            pa.field("texts", pa.int64()),
            pa.field("completed_at", TS),
        ]
    )
