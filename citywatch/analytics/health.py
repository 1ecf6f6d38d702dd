"""Pipeline health from the segments table: states, lag, failures, throughput.

A segment row is written when indexing finishes (``updated_at``), so the lag of a
segment is ``updated_at`` minus the end of its footage: how long after the last
frame was recorded its faces and plates became searchable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

UTC_US = pl.Datetime("us", "UTC")
_LOCATION = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|/)[^\s:'\"]+")
MAX_REASON = 200


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds() / 1e6


def _footage_end(segments: pl.DataFrame) -> pl.Expr:
    # a failed segment may have no end: its start is the best footage time known
    return pl.coalesce("end", "start")


def segments_by_state(segments: pl.DataFrame) -> pl.DataFrame:
    """state, segments, footage_s (seconds of footage in that state)."""
    return (
        segments.group_by("state")
        .agg(
            segments=pl.len().cast(pl.Int64),
            footage_s=_seconds(pl.col("end") - pl.col("start")).fill_null(0).sum(),
        )
        .sort("state")
    )


def index_lag(segments: pl.DataFrame) -> pl.DataFrame:
    """Per indexed segment: id, camera_id, state, footage_end, indexed_at, lag_s."""
    return (
        segments.select(
            "id", "camera_id", "state", footage_end=_footage_end(segments), indexed_at="updated_at"
        )
        .with_columns(lag_s=_seconds(pl.col("indexed_at") - pl.col("footage_end")))
        .sort("indexed_at")
    )


def failure_reason(error: str, uri: str = "") -> str:
    """A failure message without the segment's own location, so that alike failures group."""
    text = error.replace(uri, "<segment>") if uri else error
    text = _LOCATION.sub("<path>", text)
    text = " ".join(text.split())
    return text[:MAX_REASON] or "(no reason recorded)"


def failures_by_reason(segments: pl.DataFrame) -> pl.DataFrame:
    """Failed segments grouped by reason: reason, segments, cameras, example (a segment id)."""
    failed = segments.filter(pl.col("state") == "failed")
    reasons = [
        failure_reason(e or "", u or "") for e, u in zip(failed["error"].to_list(), failed["uri"].to_list())
    ]
    return (
        failed.with_columns(reason=pl.Series(reasons, dtype=pl.String))
        .group_by("reason")
        .agg(
            segments=pl.len().cast(pl.Int64),
            cameras=pl.col("camera_id").n_unique().cast(pl.Int64),
            example=pl.col("id").min(),
        )
        .sort(["segments", "reason"], descending=[True, False])
    )


def throughput(segments: pl.DataFrame, every: str = "1m") -> pl.DataFrame:
    """Work finished per ``every`` of indexing time (a Polars duration, default a minute):
    window, segments, failed, footage_s, frames_analysed, faces."""
    if segments.is_empty():
        return pl.DataFrame(
            schema={
                "window": UTC_US,
                "segments": pl.Int64,
                "failed": pl.Int64,
                "footage_s": pl.Float64,
                "frames_analysed": pl.Int64,
                "faces": pl.Int64,
            }
        )
    return (
        segments.with_columns(window=pl.col("updated_at").dt.truncate(every))
        .group_by("window")
        .agg(
            segments=pl.len().cast(pl.Int64),
            failed=(pl.col("state") == "failed").sum().cast(pl.Int64),
            footage_s=_seconds(pl.col("end") - pl.col("start")).fill_null(0).sum(),
            frames_analysed=pl.col("frames_analysed").sum().cast(pl.Int64),
            faces=pl.col("faces").sum().cast(pl.Int64),
        )
        .sort("window")
    )


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """A one-line picture of indexing. Lags (seconds) are of done segments; None if none."""

    segments: int
    done: int
    failed: int
    footage_s: float
    lag_median_s: float | None
    lag_p95_s: float | None
    lag_max_s: float | None
    busy_s: float  # first to last segment finished

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of footage indexed per second of indexing (None under two segments)."""
        return self.footage_s / self.busy_s if self.busy_s > 0 else None


def pipeline_health(segments: pl.DataFrame) -> PipelineHealth:
    """Counts per state, lag percentiles and overall speed of the segments given."""
    states = dict(
        zip(*segments_by_state(segments).select("state", "segments").to_dict(as_series=False).values())
    )
    totals = segments.select(
        footage=_seconds(pl.col("end") - pl.col("start")).fill_null(0).sum(),
        busy=_seconds(pl.col("updated_at").max() - pl.col("updated_at").min()),
    ).row(0, named=True)
    lag = (
        index_lag(segments)
        .filter(pl.col("state") == "done")
        .select(
            median=pl.col("lag_s").median(),
            p95=pl.col("lag_s").quantile(0.95, "nearest"),
            max=pl.col("lag_s").max(),
        )
        .row(0, named=True)
    )
    return PipelineHealth(
        segments=segments.height,
        done=int(states.get("done", 0)),
        failed=int(states.get("failed", 0)),
        footage_s=float(totals["footage"] or 0.0),
        lag_median_s=_float_or_none(lag["median"]),
        lag_p95_s=_float_or_none(lag["p95"]),
        lag_max_s=_float_or_none(lag["max"]),
        busy_s=float(totals["busy"] or 0.0),
    )


def _float_or_none(value: float | None) -> float | None:
    """An aggregate of no rows is null: keep it None (not 0, which would read as "no lag")."""
    return None if value is None else float(value)
