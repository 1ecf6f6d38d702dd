"""One frozen row type per LanceDB table, with its Arrow schema beside it.

The index, watchlist and retention tables are in :mod:`citywatch.schemas.core`; the
governance tables (alerts, deliveries, the audit log) in :mod:`citywatch.schemas.governance`;
the discovery marks in :mod:`citywatch.schemas.discovery`; plate search's distinct texts in
:mod:`citywatch.schemas.plate_texts`; rows to and from Arrow in
:mod:`citywatch.schemas.convert`.
"""

from citywatch.schemas.convert import Row, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.schemas.core import (
    BBOX,
    NO_TEMPLATE,
    POLYGON,
    TS,
    CameraKind,
    CameraRow,
    EntryKind,
    EntryStatus,
    FaceRow,
    HoldRow,
    PlateRow,
    Reason,
    SegmentHoldRow,
    SegmentRow,
    SegmentState,
    SweepStateRow,
    WatchlistRow,
)
from citywatch.schemas.discovery import DiscoveryMarkRow
from citywatch.schemas.governance import SIGNATURE_FIELD, AlertRow, AuditRow, DeliveryRow, iso_utc
from citywatch.schemas.plate_texts import PlateTextRow, PlateTextsMarkRow

__all__ = [
    "BBOX",
    "NO_TEMPLATE",
    "POLYGON",
    "SIGNATURE_FIELD",
    "TS",
    "AlertRow",
    "AuditRow",
    "CameraKind",
    "CameraRow",
    "DeliveryRow",
    "EntryKind",
    "EntryStatus",
    "FaceRow",
    "HoldRow",
    "PlateRow",
    "PlateTextRow",
    "PlateTextsMarkRow",
    "Reason",
    "Row",
    "SegmentHoldRow",
    "SegmentRow",
    "SegmentState",
    "SweepStateRow",
    "DiscoveryMarkRow",
    "WatchlistRow",
    "arrow_to_rows",
    "iso_utc",
    "rows_to_arrow",
    "utcnow",
]
