"""The Prefect artifact of one sweep: rows read, alerts, deliveries, watermark age.

:func:`sweep_markdown` is plain (tested without Prefect); :func:`publish_sweep`
creates the markdown artifact (key ``watchlist-sweep``) in the current flow run.
The watermark age is the time since the sweep last moved each source's watermark
(about 0 right after a sweep; it grows when sweeps stop), and ``versions behind``
counts the source table's versions written since the sweep's snapshot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from citywatch.schemas import utcnow
from citywatch.storage import Storage
from citywatch.tables import has_table
from citywatch.tasks.markdown import md_table
from citywatch.tasks.sweep.notify import DeliveryReport
from citywatch.tasks.sweep.run import SweepResult
from citywatch.tasks.sweep.watermark import load_watermarks
from citywatch.times import format_utc

SWEEP_KEY = "watchlist-sweep"


@dataclass(frozen=True, slots=True)
class WatermarkAge:
    source: str  # faces | plates
    updated_at: dt.datetime
    age_s: float
    rows_seen: int
    versions_behind: int  # source table versions newer than the one the sweep read


def watermark_ages(storage: Storage, now: dt.datetime | None = None) -> list[WatermarkAge]:
    now = now or utcnow()
    out = []
    for source, mark in sorted(load_watermarks(storage).items()):
        behind = 0
        if has_table(storage.db, source):
            behind = max(0, int(storage.db.open_table(source).version) - mark.table_version)
        out.append(
            WatermarkAge(
                source, mark.updated_at, (now - mark.updated_at).total_seconds(), mark.rows_seen, behind
            )
        )
    return out


def sweep_markdown(result: SweepResult, delivery: DeliveryReport, marks: list[WatermarkAge]) -> str:
    parts = [
        "# Watchlist sweep",
        f"{result.faces_read + result.plates_read} new rows read, {result.alerts_new} new alerts, "
        f"{delivery.delivered} deliveries sent, {delivery.failed} failed, in {result.wall_s:.2f} s.",
        md_table(
            ["figure", "value"],
            [
                ("face rows read", result.faces_read),
                ("plate rows read", result.plates_read),
                ("rows skipped (malformed ids)", len(result.skipped)),
                ("active watchlist entries", result.entries_active),
                ("matches (passes)", result.matched),
                ("new alerts", result.alerts_new),
                ("deliveries claimed", delivery.claimed),
                ("deliveries sent", delivery.delivered),
                ("deliveries failed", delivery.failed),
            ],
        ),
    ]
    if result.skipped:
        parts += [
            "## Skipped rows",
            md_table(
                ["table", "row", "reason"], [(r.table, r.row_id, r.reason) for r in result.skipped[:50]]
            ),
        ]
    if delivery.errors:
        parts += ["## Delivery errors", md_table(["sink", "error"], delivery.errors[:50])]
    parts += [
        "## Watermark",
        md_table(
            ["source", "moved at", "age s", "rows seen", "versions behind"],
            [
                (
                    m.source,
                    format_utc(m.updated_at, "seconds"),
                    f"{m.age_s:.1f}",
                    m.rows_seen,
                    m.versions_behind,
                )
                for m in marks
            ],
        ),
    ]
    return "\n\n".join(parts) + "\n"


def publish_sweep(storage: Storage, result: SweepResult, delivery: DeliveryReport) -> None:
    """Create the sweep's markdown artifact in the current flow run."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        sweep_markdown(result, delivery, watermark_ages(storage)),
        key=SWEEP_KEY,
        description=f"{result.faces_read + result.plates_read} rows read, {result.alerts_new} new alerts, "
        f"{delivery.delivered} deliveries sent",
    )
