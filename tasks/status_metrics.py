"""The pipeline status (tasks/status.py) in Prometheus' text exposition format 0.0.4.

Written by hand (no prometheus_client): ``# HELP`` and ``# TYPE`` per family, one
sample per line, label values escaped (backslash, double quote, newline). Figures
that are unknown (no segment of a camera indexed yet, no sweep yet) are left out
rather than reported as 0, which would read as "no lag".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from citywatch.tasks.status import PipelineStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Family:
    name: str
    kind: str  # gauge | counter
    help: str
    samples: list[tuple[Mapping[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


def render(families: Iterable[_Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(
                f"{family.name}{{{text}}} {_number(value)}" if text else f"{family.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def prometheus_text(status: PipelineStatus) -> str:
    """Every figure of ``citywatch status`` as Prometheus gauges (prefix ``citywatch_``)."""
    segments = _Family("citywatch_segments", "gauge", "Segments by state (found: files under footage).")
    segments.add(status.segments_found, state="found")
    segments.add(status.segments_done, state="done")
    segments.add(status.segments_failed, state="failed")
    backlog = _Family("citywatch_backlog_segments", "gauge", "Segments waiting to be indexed.")
    backlog.add(status.backlog)
    lag = _Family(
        "citywatch_camera_lag_seconds", "gauge", "Newest footage minus newest indexed segment, per camera."
    )
    camera_backlog = _Family("citywatch_camera_backlog_segments", "gauge", "Segments waiting, per camera.")
    camera_failed = _Family("citywatch_camera_failed_segments", "gauge", "Failed segments, per camera.")
    for camera in status.cameras:
        if camera.lag_s is not None:
            lag.add(camera.lag_s, camera=camera.camera_id)
        camera_backlog.add(camera.backlog, camera=camera.camera_id)
        camera_failed.add(camera.failed, camera=camera.camera_id)
    max_lag = _Family("citywatch_max_lag_seconds", "gauge", "Largest lag of any camera.")
    if status.max_lag_s is not None:
        max_lag.add(status.max_lag_s)
    sweep = _Family(
        "citywatch_sweep_age_seconds", "gauge", "Seconds since the watchlist sweep last moved its watermark."
    )
    if status.sweep_age_s is not None:
        sweep.add(status.sweep_age_s)
    sweep_rows = _Family("citywatch_sweep_rows_seen", "gauge", "Face and plate rows the sweep has read.")
    sweep_rows.add(status.sweep_rows_seen)
    deliveries = _Family("citywatch_deliveries", "gauge", "Alert deliveries not delivered, by state.")
    deliveries.add(status.deliveries_pending, state="pending")
    deliveries.add(status.deliveries_failed, state="failed")
    used = _Family("citywatch_storage_bytes", "gauge", "Bytes under the storage root, by area.")
    files = _Family("citywatch_storage_files", "gauge", "Files under the storage root, by area.")
    for area in status.storage:
        used.add(area.bytes, area=area.area)
        files.add(area.files, area=area.area)
    return render(
        [
            segments,
            backlog,
            lag,
            camera_backlog,
            camera_failed,
            max_lag,
            sweep,
            sweep_rows,
            deliveries,
            used,
            files,
        ]
    )
