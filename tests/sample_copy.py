"""A copy of an indexed storage root that reads its own files.

Indexing stores footage and thumbnail locations as absolute paths (``segments.uri``,
``faces.thumb_uri``, ``plates.thumb_uri``). A copied root still names the original's
files, which are gone once pytest removes its old temporary folders (a sample cached
with ``CITYWATCH_CONSOLE_SAMPLE``): ``relocate`` points the copy at its own files.
"""

from __future__ import annotations

from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table

LOCATIONS = (("segments", "uri"), ("faces", "thumb_uri"), ("plates", "thumb_uri"))


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def relocate(settings: Settings) -> str:
    """Rewrite the copied root's stored locations to itself; the original root it named."""
    storage = Storage(settings)
    if not has_table(storage.db, "segments"):
        return ""
    rows = storage.db.open_table("segments").search().select(["uri"]).limit(1).to_arrow().to_pylist()
    if not rows or "/footage/" not in rows[0]["uri"]:
        return ""
    old = rows[0]["uri"].split("/footage/", 1)[0]
    new = storage.root.rstrip("/")
    if old == new:
        return old
    for table, column in LOCATIONS:
        if has_table(storage.db, table):
            storage.db.open_table(table).update(
                values_sql={column: f"replace({column}, {_sql_text(old + '/')}, {_sql_text(new + '/')})"}
            )
    return old
