"""The watchlist sweep: rows written since the watermark -> matches -> alerts.

Watermark. "Newer" means *written* later, not captured later: a segment indexed late
has old capture times. LanceDB appends every write (insert, merge-insert update,
re-index) as new fragments whose ids only grow, and ``_rowaddr`` is
``fragment_id << 32 | offset``. So the rows written after a snapshot are exactly
those with ``_rowaddr >= (F + 1) << 32``, F being the largest fragment id the sweep
has read; the filter prunes whole fragments, so a sweep costs O(new rows). The
watermark (F per source table) lives in the ``sweep_state`` table and only moves
forward, after the alerts it covers are written. A compaction (``optimize``) rewrites
old rows into new fragments: the next sweep re-reads them once, which re-raises
nothing (alert ids are deterministic) but costs one full pass.

Exactly once. One alert per pass of an entry in front of a camera: matches are best
per track, tracks of one entry and camera less than ``alert_pass_gap_s`` apart are one
pass, and a pass that already has an alert raises no other. Alert id = hash(entry,
camera, the pass's first track); writes are insert-if-absent on a
table keyed by ``id`` (see citywatch.tables.open_table), so a re-run after a
crash, or two sweeps at once, cannot duplicate an alert. Deliveries are written
before their alerts, so an alert never exists without its deliveries.

Stages, one module each: ``watermark`` (what is new), ``face_match`` and
``plate_match`` (new rows vs the active watchlist), ``passes`` (one alert per pass,
known passes dropped), ``run`` (one sweep: plan, write, advance; the Prefect task).
"""

from citywatch.tasks.sweep.face_match import match_faces
from citywatch.tasks.sweep.passes import best_per_track, drop_known_passes, group_passes
from citywatch.tasks.sweep.plate_match import PlateMatcher, canonical_plate, match_plates
from citywatch.tasks.sweep.run import (
    SweepPlan,
    SweepResult,
    commit_alerts,
    plan_sweep,
    sweep_once,
    sweep_task,
)
from citywatch.tasks.sweep.watermark import advance_watermarks, load_watermarks, read_new_rows

__all__ = [
    "PlateMatcher",
    "SweepPlan",
    "SweepResult",
    "advance_watermarks",
    "best_per_track",
    "canonical_plate",
    "commit_alerts",
    "drop_known_passes",
    "group_passes",
    "load_watermarks",
    "match_faces",
    "match_plates",
    "plan_sweep",
    "read_new_rows",
    "sweep_once",
    "sweep_task",
]
