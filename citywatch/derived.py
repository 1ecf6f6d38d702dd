"""The derived analyst dataset: what analysts may read, in a LanceDB database of its own.

Written by the index and retention flows (``citywatch.tasks.publish``) from the
biometric tables, read by :mod:`citywatch.analytics` and the notebooks. It lives at
``settings.storage.analytics_root`` or, unset, ``<storage_root>/analytics`` (``db/`` below it),
so analysts' storage credentials can be limited to that prefix (infra/s3/).

What it holds, table by table (:data:`DERIVED_SCHEMAS`): cameras; segments (state,
lag, failures); face rows **without embeddings and without thumbnails** (one per crop,
grouped into tracks by ``track_id``: counts, never faces); plate passes without
thumbnails (the text stays: analysts may count plates, see docs/governance.md); and
the GPS points of mobile cameras. Nothing in it can be searched by face.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from citywatch import layout
from citywatch.errors import BadInputError, TransientError
from citywatch.schemas import TS, CameraRow, FaceRow, PlateRow, SegmentRow
from citywatch.settings import Settings
from citywatch.storage import Storage, is_remote
from citywatch.tables import has_table

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table

HIDDEN_COLUMNS = frozenset({"embedding", "template", "thumb_uri"})
"""Columns of the biometric tables the derived dataset never holds."""

GPS_SCHEMA = pa.schema(
    [
        pa.field("segment_id", pa.string(), nullable=False),
        pa.field("camera_id", pa.string()),
        pa.field("ts", TS),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
    ]
)


def _without_hidden(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in HIDDEN_COLUMNS])


DERIVED_SCHEMAS: Mapping[str, pa.Schema] = {
    "cameras": CameraRow.SCHEMA,
    "segments": SegmentRow.SCHEMA,
    "faces": _without_hidden(FaceRow.schema(1)),  # no vector of any size
    "plates": _without_hidden(PlateRow.SCHEMA),
    "gps": GPS_SCHEMA,
}
"""Every table of the derived dataset and its columns (nothing else is written there)."""


def analytics_location(settings: Settings) -> str:
    """The derived dataset's location: ``analytics_root`` or ``<storage_root>/analytics``."""
    if settings.storage.analytics_root:
        location = settings.storage.analytics_root.rstrip("/")
        if not is_remote(location):
            location = str(Path(location.removeprefix("file://")).expanduser().resolve())
        return location
    return Storage(settings).url(layout.ANALYTICS.rstrip("/"))


class DerivedDataset:
    """The derived dataset's LanceDB database (``<location>/db``); it never opens the root's."""

    def __init__(self, settings: Settings) -> None:
        self.location = analytics_location(settings)
        self.url = f"{self.location}/db"
        # credentials and endpoint as for the root (an analyst's are for this prefix only)
        self._options = Storage(settings).lance_options(self.url)

    @cached_property
    def db(self) -> lancedb.DBConnection:
        import lancedb

        try:
            return lancedb.connect(self.url, storage_options=self._options or None)
        except (ValueError, RuntimeError, OSError) as exc:
            if not is_remote(self.url):
                raise
            raise TransientError(f"could not connect to the analyst dataset at {self.url}: {exc}") from exc

    def open(self, name: str) -> Table | None:
        """Table ``name`` (one of :data:`DERIVED_SCHEMAS`), or None before the first publish.

        A table carrying a hidden column (embeddings, thumbnails) is refused.
        """
        if name not in DERIVED_SCHEMAS:
            raise BadInputError(
                f"table {name!r} is not in the analyst dataset ({', '.join(DERIVED_SCHEMAS)})"
            )
        if not has_table(self.db, name):
            return None
        table = self.db.open_table(name)
        existing = table.schema
        hidden = HIDDEN_COLUMNS & set(existing.names)
        if hidden:
            raise BadInputError(
                f"analyst dataset {self.url}: table {name!r} has column(s) {sorted(hidden)}, which "
                "the analyst dataset must never hold; republish it (citywatch.tasks.publish)"
            )
        for field in DERIVED_SCHEMAS[name]:
            if field.name not in existing.names:
                raise BadInputError(
                    f"analyst dataset {self.url}: table {name!r} has no column {field.name!r}: "
                    "it was written by another version; republish it"
                )
        return table
