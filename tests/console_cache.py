"""Reusing the console's cached indexed sample (``CITYWATCH_CONSOLE_SAMPLE``, development only).

Index rows name their files by absolute URL under the root that was indexed (a pytest tmp
dir that pytest deletes a few runs later). A copy of the cache is made self-contained by
pointing those URLs at the copy: otherwise thumbnails and footage of a cache built in an
earlier session are missing, and pages show broken images.
"""

from __future__ import annotations

from pathlib import Path

from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table

URL_COLUMNS = {"faces": "thumb_uri", "plates": "thumb_uri", "segments": "uri"}


def indexed_root(storage: Storage) -> str | None:
    """The root the sample was indexed under, read from a segment's URL."""
    if not has_table(storage.db, "segments"):
        return None
    rows = storage.db.open_table("segments").search().select(["uri"]).limit(1).to_arrow().to_pylist()
    uri = str(rows[0]["uri"]) if rows else ""
    return uri.split("/footage/", 1)[0] if "/footage/" in uri else None


def point_rows_at(settings: Settings, root: Path) -> None:
    """Rewrite the index's file URLs from the root it was indexed under to ``root``."""
    storage = Storage(settings)
    old = indexed_root(storage)
    new = str(root)
    if old is None or old == new or "'" in old + new:
        return
    for table, column in URL_COLUMNS.items():
        if has_table(storage.db, table):
            storage.db.open_table(table).update(
                where=f"starts_with({column}, '{old}/')",
                values_sql={column: f"replace({column}, '{old}/', '{new}/')"},
            )
