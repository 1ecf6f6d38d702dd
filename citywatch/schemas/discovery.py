"""The incremental discovery's bookkeeping table (tasks/index/discovery.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from citywatch.schemas.core import TS


@dataclass(frozen=True, slots=True)
class DiscoveryMarkRow:
    """Where incremental discovery lists one camera folder from (tasks/index/discovery.py).

    One row per (footage location, camera): ``stamp`` is the segment start
    (``YYYYMMDDTHHMMSSZ``) the next listing starts at. The row with an empty
    ``camera_id`` records the location's last full listing (``updated_at``).
    """

    id: str  # "<footage url>|<camera_id>"
    footage: str
    camera_id: str
    stamp: str
    updated_at: dt.datetime

    TABLE: ClassVar[str] = "discovery_marks"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("footage", pa.string()),
            pa.field("camera_id", pa.string()),
            pa.field("stamp", pa.string()),
            pa.field("updated_at", TS),
        ]
    )
