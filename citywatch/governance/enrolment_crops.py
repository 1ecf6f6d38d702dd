"""The face crop of each enrolment photo, kept so a reviewer can compare it with a capture.

An alert is never acted on by score alone: the review queue shows the enrolled face beside
the captured one. What is kept is the face only (a fifth of its size around it, at most
160 px, like a sighting's thumbnail), never the photo it was cut from; one crop per photo,
stored under ``watchlist/<entry id>/<photo sha256>.jpg`` (derived from the row, so the
table needs no column), and deleted with the entry's template when the entry is removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from citywatch.errors import NotFoundError
from citywatch.schemas import EntryStatus, WatchlistRow
from citywatch.storage import Storage

_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENTRY_ID = re.compile(r"wl-[0-9a-z]{1,64}")


def crop_key(entry_id: str, sha256: str) -> str:
    if not _ENTRY_ID.fullmatch(entry_id) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"no enrolment crop for entry {entry_id[:80]!r}, photo {sha256[:80]!r}")
    return f"watchlist/{entry_id}/{sha256}.jpg"


def photo_hashes(entry: WatchlistRow) -> list[str]:
    """The entry's enrolment photos (a template from a face group has none)."""
    return [sha for sha in entry.photo_sha256 if _SHA256.fullmatch(sha)]


def write_crops(storage: Storage, entry_id: str, crops: Sequence[tuple[str, bytes]]) -> None:
    """Keep each (photo sha256, face crop JPEG) of a new entry."""
    for sha, jpeg in crops:
        if jpeg:
            storage.write_bytes(crop_key(entry_id, sha), jpeg)


def delete_crops(storage: Storage, entry: WatchlistRow) -> None:
    """Delete an entry's crops (it is removed: its template goes, and so do they)."""
    if not _ENTRY_ID.fullmatch(entry.id):
        return
    for sha in photo_hashes(entry):
        storage.delete(storage.url(crop_key(entry.id, sha)))


def first_crop(storage: Storage, entry: WatchlistRow) -> bytes:
    """The face crop of the entry's first enrolment photo; NotFoundError when none is kept."""
    if entry.status != EntryStatus.REMOVED and _ENTRY_ID.fullmatch(entry.id):
        for sha in photo_hashes(entry):
            url = storage.url(crop_key(entry.id, sha))
            if storage.exists(url):
                return storage.read_bytes(url)
    raise NotFoundError(f"watchlist entry {entry.id[:80]!r} has no enrolment photo to show")


def has_crop(storage: Storage, entry: WatchlistRow) -> bool:
    try:
        first_crop(storage, entry)
    except NotFoundError:
        return False
    return True
