"""Segment leases: two index runs never index the same segment at once.

A lease is a generation of create-exclusive objects ``leases/<segment_id>/<n>.json``
(owner run token + expiry). Claiming writes generation 0, or n+1 once generation n
has expired; the storage's create-exclusive write decides every race, and nothing
is ever overwritten or deleted while held, so no two runs can both win. A retried or
rescheduled task of the same run (same token) keeps its lease. Releasing deletes the
generations; a crashed run's lease simply expires.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from dataclasses import dataclass

from citywatch.errors import NotFoundError, TransientError
from citywatch.schemas import utcnow
from citywatch.storage import STORAGE_IO_ERRORS, Storage


@dataclass(frozen=True, slots=True)
class Lease:
    segment_id: str
    generation: int
    owner: str
    expires: dt.datetime


def _dir(storage: Storage, segment_id: str) -> str:
    return storage.url(f"leases/{segment_id}")


def _generations(storage: Storage, segment_id: str) -> list[int]:
    fs, path = storage.fs(_dir(storage, segment_id))
    try:
        names = [posixpath.basename(p) for p in fs.ls(path, detail=False)]
    except FileNotFoundError:
        return []
    except STORAGE_IO_ERRORS as exc:
        raise TransientError(f"could not list the leases of segment {segment_id}: {exc}") from exc
    return sorted(int(n.split(".")[0]) for n in names if n.endswith(".json") and n[0].isdigit())


def _read(storage: Storage, segment_id: str, generation: int) -> Lease | None:
    try:
        data = json.loads(storage.read_bytes(f"{_dir(storage, segment_id)}/{generation:06d}.json"))
    except (NotFoundError, ValueError):
        return None
    return Lease(segment_id, generation, str(data["owner"]), dt.datetime.fromisoformat(str(data["expires"])))


def claim(storage: Storage, segment_id: str, owner: str, lease_s: float) -> Lease | None:
    """The lease for ``owner``, or None if another live run holds it."""
    gens = _generations(storage, segment_id)
    nxt = 0
    if gens:
        current = _read(storage, segment_id, gens[-1])
        if current is not None and current.owner == owner:
            return current
        if current is not None and current.expires > utcnow():
            return None
        nxt = gens[-1] + 1
    expires = utcnow() + dt.timedelta(seconds=lease_s)
    body = json.dumps({"owner": owner, "expires": expires.isoformat()}).encode()
    if storage.create_exclusive(f"{_dir(storage, segment_id)}/{nxt:06d}.json", body):
        return Lease(segment_id, nxt, owner, expires)
    winner = _read(storage, segment_id, nxt)
    return winner if winner is not None and winner.owner == owner else None


def release(storage: Storage, lease: Lease) -> None:
    """Drop the lease (all generations up to ours)."""
    for gen in _generations(storage, lease.segment_id):
        if gen <= lease.generation:
            storage.delete(f"{_dir(storage, lease.segment_id)}/{gen:06d}.json")
