"""One sweep: watermark -> matches -> passes -> write deliveries and alerts -> advance
the watermark (only after the alerts are written), and its Prefect task."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE

from citywatch.governance.alerts import alerts_table, deliveries_table, new_delivery
from citywatch.governance.watchlist import active_entries
from citywatch.plate_gate import accepts_row
from citywatch.schemas import AlertRow, DeliveryRow, FaceRow, PlateRow, SweepStateRow, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import insert_missing
from citywatch.tasks.sweep.face_match import match_faces
from citywatch.tasks.sweep.notify import configured_sinks
from citywatch.tasks.sweep.passes import drop_known_passes, group_passes
from citywatch.tasks.sweep.plate_match import match_plates
from citywatch.tasks.sweep.screen import SkippedRow, screen_rows
from citywatch.tasks.sweep.watermark import advance_watermarks, load_watermarks, read_new_rows_of


@dataclass(frozen=True)
class SweepPlan:
    """What one sweep found (nothing written yet)."""

    alerts: list[AlertRow]
    deliveries: list[DeliveryRow]
    watermarks: list[SweepStateRow]
    faces_read: int
    plates_read: int
    entries_active: int
    skipped: list[SkippedRow] = field(default_factory=list)


@dataclass(frozen=True)
class SweepResult:
    faces_read: int
    plates_read: int
    entries_active: int
    matched: int  # alerts the new rows support (new or already there)
    alerts_new: int
    alert_ids: list[str]
    wall_s: float
    skipped: list[SkippedRow] = field(default_factory=list)  # new rows not matched, with why


def plate_rule(settings: Settings) -> Callable[[str, float | None], bool]:
    """The plate acceptance rule for stored rows, as indexing applied it (plates.gate_*)."""
    grammar, min_score = settings.plates.plate_grammar(), settings.plates.gate_min_score
    return lambda text, score: accepts_row(score, text, grammar, min_score)


def plan_sweep(storage: Storage, settings: Settings, now: dt.datetime) -> SweepPlan:
    """Read rows past the watermarks and match them against the active watchlist."""
    marks = load_watermarks(storage)
    entries = active_entries(storage, now)
    faces, face_marks = read_new_rows_of(storage, FaceRow.TABLE, marks, now)
    plates, plate_marks = read_new_rows_of(storage, PlateRow.TABLE, marks, now)
    good_faces, skipped = screen_rows(faces, FaceRow.TABLE)
    good_plates, skipped_plates = screen_rows(plates, PlateRow.TABLE)
    gap = dt.timedelta(seconds=settings.sweep.pass_gap_s)
    found = group_passes(
        match_faces(good_faces, entries, now, settings.faces.rule())
        + match_plates(good_plates, entries, now, plate_rule(settings)),
        gap,
    )
    alerts = drop_known_passes(storage, found, gap)
    sinks = configured_sinks(storage)
    deliveries = [new_delivery(a.id, sink, now) for a in alerts for sink in sinks]
    return SweepPlan(
        alerts,
        deliveries,
        face_marks + plate_marks,
        faces.num_rows,
        plates.num_rows,
        len(entries),
        skipped + skipped_plates,
    )


def commit_alerts(storage: Storage, plan: SweepPlan) -> int:
    """Write deliveries, then alerts, each only where absent; returns the new alert count."""
    if not plan.alerts:
        return 0
    insert_missing(deliveries_table(storage.db), rows_to_arrow(plan.deliveries, DeliveryRow.SCHEMA))
    return insert_missing(alerts_table(storage.db), rows_to_arrow(plan.alerts, AlertRow.SCHEMA))


def sweep_once(storage: Storage, settings: Settings, now: dt.datetime | None = None) -> SweepResult:
    """Plan -> write alerts -> advance the watermark (only after the alerts are written)."""
    started = time.perf_counter()
    plan = plan_sweep(storage, settings, now or utcnow())
    created = commit_alerts(storage, plan)
    advance_watermarks(storage, plan.watermarks)
    return SweepResult(
        plan.faces_read,
        plan.plates_read,
        plan.entries_active,
        len(plan.alerts),
        created,
        [a.id for a in plan.alerts],
        time.perf_counter() - started,
        plan.skipped,
    )


@task(name="match-and-alert", retries=2, retry_delay_seconds=[1, 3], cache_policy=NO_CACHE)
def sweep_task(settings: Settings) -> SweepResult:
    """Task shim: one sweep of the storage root ``settings`` names."""
    return sweep_once(Storage(settings), settings)
