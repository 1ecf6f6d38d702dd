"""A memory tier for closed day shards: their search columns held in numpy, in one process.

A day shard whose UTC day has ended changes only when a segment is re-indexed, when
retention deletes expired rows or when a vector index is built: each of those commits a
new table version. The tier keeps, per loaded shard, the version it was read at; a
search uses the memory copy only when the shard's current version is that one, and
otherwise reads LanceDB (and asks for a reload). A search never waits for a load: loads
run one at a time in a background thread, started by the first search that needs a
shard and by the service at startup (:meth:`ShardTier.preload`, newest days first, as
many as fit). Whole shards are evicted least recently used first to stay within the
budget.

The generic part lives here; what a shard holds and how it is searched is the table's
own (tasks/search/faces_memory.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from citywatch.shards import shard_day

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table

log = logging.getLogger(__name__)


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


S = TypeVar("S", bound=Sized)


@dataclass(frozen=True, slots=True)
class Held(Generic[S]):
    name: str
    version: int
    shard: S
    load_s: float  # seconds the load took


@dataclass(frozen=True, slots=True)
class TierStats:
    shards: int
    nbytes: int
    budget_bytes: int
    loads: int
    served: int  # shard searches answered from memory
    load_s: float  # seconds spent loading, all loads
    skipped: tuple[str, ...]  # shards larger than the whole budget


def is_closed(name: str, today: dt.date) -> bool:
    """A day shard whose UTC day has ended (the unsharded table and today's shard are open)."""
    day = shard_day(name)
    return day is not None and day < today


class ShardTier(Generic[S]):
    """Closed day shards of one table in memory, each at the version it was read at."""

    def __init__(
        self,
        db: Callable[[], lancedb.DBConnection],
        load: Callable[[Table], S],
        budget_bytes: int,
        *,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self._db = db
        self._load = load
        self.budget_bytes = budget_bytes
        self._today = today
        self._held: OrderedDict[str, Held[S]] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._wanted: OrderedDict[str, bool] = OrderedDict()  # name -> may evict to fit
        self._wake = threading.Condition(self._lock)
        self._busy = False
        self._stopped = False
        self._loads = 0
        self._served = 0
        self._load_s = 0.0
        self._skipped: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="memory-tier", daemon=True)
        self._thread.start()

    # --- what a search uses ---------------------------------------------------------

    def closed(self, name: str) -> bool:
        return is_closed(name, self._today())

    def get(self, name: str, version: int) -> S | None:
        """The shard held at ``version``, or None (then a load is asked for: the current
        version will be read in the background; a search never waits for it)."""
        with self._lock:
            held = self._held.get(name)
            if held is not None and held.version == version:
                self._held.move_to_end(name)
                self._served += 1
                return held.shard
            if held is not None:  # a newer version: never serve the old rows
                del self._held[name]
        self.request([name])
        return None

    def request(self, names: Sequence[str], *, evict: bool = True) -> None:
        """Load ``names`` (closed shards only) in the background, in this order."""
        with self._lock:
            for name in names:
                if self.closed(name) and name not in self._skipped and name not in self._wanted:
                    self._wanted[name] = evict
            self._wake.notify()

    def preload(self, names: Sequence[str]) -> None:
        """Load the newest closed shards of ``names`` that fit without evicting any."""
        closed = sorted((n for n in names if self.closed(n)), key=lambda n: shard_day(n) or dt.date.min)
        self.request(closed[::-1], evict=False)

    def held(self) -> dict[str, Held[S]]:
        with self._lock:
            return dict(self._held)

    def stats(self) -> TierStats:
        with self._lock:
            return TierStats(
                shards=len(self._held),
                nbytes=sum(h.shard.nbytes for h in self._held.values()),
                budget_bytes=self.budget_bytes,
                loads=self._loads,
                served=self._served,
                load_s=self._load_s,
                skipped=tuple(sorted(self._skipped)),
            )

    def wait_idle(self, timeout: float) -> bool:
        """Block until no load is pending (benchmarks and tests; a search never calls it)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._wanted or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.05))
            return True

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._wanted.clear()
            self._held.clear()
            self._wake.notify_all()
        self._thread.join(timeout=30)

    # --- the loader thread ----------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._wanted and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                name, evict = self._wanted.popitem(last=False)
                self._busy = True
            try:
                self._load_one(name, evict)
            except Exception:  # a failed load leaves the shard to LanceDB; the next search asks again
                log.exception("memory tier: could not load %s", name)
            finally:
                with self._lock:
                    self._busy = False
                    self._wake.notify_all()

    def _load_one(self, name: str, evict: bool) -> None:
        started = time.monotonic()
        table = self._db().open_table(name)
        version = table.version
        with self._lock:
            held = self._held.get(name)
            if held is not None and held.version == version:
                return
            if not evict and self._free() <= 0:
                return
        table.checkout(version)  # read exactly that version, whatever is committed meanwhile
        shard = self._load(table)
        took = time.monotonic() - started
        with self._lock:
            self._loads += 1
            self._load_s += took
            self._held.pop(name, None)
            if shard.nbytes > self.budget_bytes:
                self._skipped.add(name)
                log.warning("memory tier: %s needs %d MB, more than the budget", name, shard.nbytes >> 20)
                return
            while self._held and self._free() < shard.nbytes:
                if not evict or self._stopped:
                    return
                self._held.popitem(last=False)
            if not self._stopped:
                self._held[name] = Held(name, version, shard, took)

    def _free(self) -> int:
        return self.budget_bytes - sum(h.shard.nbytes for h in self._held.values())
