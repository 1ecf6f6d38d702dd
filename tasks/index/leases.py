"""Segment leases: two index runs never index the same segment at once.

A lease is a generation of create-exclusive objects ``leases/<segment_id>/<n>.json``
(owner run token + expiry). Claiming writes generation 0, or n+1 once generation n
has expired; the storage's create-exclusive write decides every race, and nothing
is ever overwritten while held, so no two runs can both win. A retried or
rescheduled task of the same run (same token) keeps its lease. Releasing deletes the
generations.

Heartbeat: while a segment is indexed, :class:`Heartbeat` renews the lease every
``index_lease_heartbeat_s`` by writing the next generation itself (the same
create-exclusive write, so a renewal and a takeover cannot both win), with an expiry
``index_lease_s`` ahead, a few heartbeats away. A live run never loses a long
segment; a killed run stops renewing, and its segments are free again within
``index_lease_s``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import posixpath
import threading
from dataclasses import dataclass
from types import TracebackType

from citywatch.errors import NotFoundError, TransientError
from citywatch.schemas import utcnow
from citywatch.storage import STORAGE_IO_ERRORS, Storage

log = logging.getLogger(__name__)


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
    return _write_generation(storage, segment_id, nxt, owner, lease_s)


def _write_generation(
    storage: Storage, segment_id: str, generation: int, owner: str, lease_s: float
) -> Lease | None:
    """Create generation ``generation`` for ``owner``; None if another owner got it first."""
    expires = utcnow() + dt.timedelta(seconds=lease_s)
    body = json.dumps({"owner": owner, "expires": expires.isoformat()}).encode()
    if storage.create_exclusive(f"{_dir(storage, segment_id)}/{generation:06d}.json", body):
        return Lease(segment_id, generation, owner, expires)
    winner = _read(storage, segment_id, generation)
    return winner if winner is not None and winner.owner == owner else None


def renew(storage: Storage, lease: Lease, lease_s: float) -> Lease | None:
    """The lease extended to ``lease_s`` from now, or None if another run took it over.

    Writes the next generation (create-exclusive): it fails only when a run that saw
    ours expired claimed that generation first. The generation before is then dropped.
    """
    renewed = _write_generation(storage, lease.segment_id, lease.generation + 1, lease.owner, lease_s)
    if renewed is not None:
        try:  # tidiness only: claims read the newest generation, release drops them all
            storage.delete(f"{_dir(storage, lease.segment_id)}/{lease.generation:06d}.json")
        except TransientError as exc:
            log.warning("segment %s: old lease generation not deleted (%s)", lease.segment_id, exc)
    return renewed


class Heartbeat:
    """Renews a lease every ``every_s`` seconds in a daemon thread, while a ``with`` block runs.

    ``lease`` is the latest generation (release that one); ``lost`` turns true when
    another run took the segment over (only possible after renewals failed for a
    whole ``lease_s``: the storage was unreachable, or the process stalled).
    """

    def __init__(self, storage: Storage, lease: Lease, lease_s: float, every_s: float) -> None:
        self.storage = storage
        self.lease = lease
        self.lease_s = lease_s
        self.every_s = every_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease {lease.segment_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                renewed = renew(self.storage, self.lease, self.lease_s)
            except TransientError as error:  # try again at the next beat; the lease lasts a few
                log.warning("segment %s: lease not renewed (%s)", self.lease.segment_id, error)
                continue
            if renewed is None:
                self.lost = True
                log.warning(
                    "segment %s: lease lost to another run (not renewed for %.0f s)",
                    self.lease.segment_id,
                    self.lease_s,
                )
                return
            self.lease = renewed


def release(storage: Storage, lease: Lease) -> None:
    """Drop the lease (all generations up to ours)."""
    for gen in _generations(storage, lease.segment_id):
        if gen <= lease.generation:
            storage.delete(f"{_dir(storage, lease.segment_id)}/{gen:06d}.json")
