"""Plates: frequent plates, visits and repeat visits, dwell time, co-occurrence.

Input is plate rows (``PlateRow`` columns: one row per pass of a plate in front of a
camera, ``first_ts``..``last_ts``). Reads flagged ``low_confidence`` (read once, or a
character below the confidence bar) are left out unless asked for: a misread would
otherwise count as a plate of its own.

A *visit* is a plate's passes at one camera with less than ``gap`` between one pass's
end and the next one's start; its dwell time is its first read to its last.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from citywatch.errors import BadInputError
from citywatch.plates import normalise_plate

UTC_US = pl.Datetime("us", "UTC")
EVENT_SCHEMA = pl.Schema(
    {"id": pl.String(), "label": pl.String(), "camera_id": pl.String(), "start": UTC_US, "end": UTC_US}
)
VISIT_GAP = dt.timedelta(minutes=10)


def _confident(plates: pl.DataFrame, include_low_confidence: bool) -> pl.DataFrame:
    return plates if include_low_confidence else plates.filter(~pl.col("low_confidence"))


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_microseconds() / 1e6


def plate_frequency(
    plates: pl.DataFrame, *, min_passes: int = 1, include_low_confidence: bool = False
) -> pl.DataFrame:
    """Plates by number of passes: text, passes, cameras, first_seen, last_seen."""
    found = (
        _confident(plates, include_low_confidence)
        .group_by("text")
        .agg(
            passes=pl.len().cast(pl.Int64),
            cameras=pl.col("camera_id").n_unique().cast(pl.Int64),
            first_seen=pl.col("first_ts").min(),
            last_seen=pl.col("last_ts").max(),
        )
        .filter(pl.col("passes") >= min_passes)
    )
    return found.sort(["passes", "text"], descending=[True, False])


def plate_visits(
    plates: pl.DataFrame, *, gap: dt.timedelta = VISIT_GAP, include_low_confidence: bool = False
) -> pl.DataFrame:
    """Each visit of each plate to each camera: text, camera_id, visit (1, 2, ...),
    start, end, dwell_s, passes."""
    if gap < dt.timedelta(0):
        raise BadInputError(f"visit gap {gap} must not be negative")
    group = ["text", "camera_id"]
    rows = _confident(plates, include_low_confidence).sort([*group, "first_ts"])
    prev_end = pl.col("last_ts").cum_max().shift(1).over(group)
    new_visit = prev_end.is_null() | ((pl.col("first_ts") - prev_end) > pl.lit(gap))
    rows = rows.with_columns(visit=new_visit.cast(pl.Int64).cum_sum().over(group))
    visits = rows.group_by([*group, "visit"]).agg(
        start=pl.col("first_ts").min(), end=pl.col("last_ts").max(), passes=pl.len().cast(pl.Int64)
    )
    return (
        visits.with_columns(dwell_s=_seconds(pl.col("end") - pl.col("start")))
        .select(*group, "visit", "start", "end", "dwell_s", "passes")
        .sort([*group, "visit"])
    )


def repeat_visits(
    plates: pl.DataFrame,
    *,
    gap: dt.timedelta = VISIT_GAP,
    min_visits: int = 2,
    include_low_confidence: bool = False,
) -> pl.DataFrame:
    """Plates that came back to a camera: text, camera_id, visits, first_seen, last_seen,
    total_dwell_s; most visits first."""
    visits = plate_visits(plates, gap=gap, include_low_confidence=include_low_confidence)
    out = (
        visits.group_by("text", "camera_id")
        .agg(
            visits=pl.len().cast(pl.Int64),
            first_seen=pl.col("start").min(),
            last_seen=pl.col("end").max(),
            total_dwell_s=pl.col("dwell_s").sum(),
        )
        .filter(pl.col("visits") >= min_visits)
    )
    return out.sort(["visits", "text", "camera_id"], descending=[True, False, False])


def dwell_summary(visits: pl.DataFrame) -> pl.DataFrame:
    """Dwell time per camera from :func:`plate_visits`: camera_id, visits,
    median_dwell_s, mean_dwell_s, max_dwell_s."""
    return (
        visits.group_by("camera_id")
        .agg(
            visits=pl.len().cast(pl.Int64),
            median_dwell_s=pl.col("dwell_s").median(),
            mean_dwell_s=pl.col("dwell_s").mean(),
            max_dwell_s=pl.col("dwell_s").max(),
        )
        .sort("camera_id")
    )


# --- co-occurrence -------------------------------------------------------------------
def plate_events(plates: pl.DataFrame, text: str, *, include_low_confidence: bool = False) -> pl.DataFrame:
    """The passes of one plate as events (id, label, camera_id, start, end)."""
    wanted = normalise_plate(text)
    if not wanted:
        raise BadInputError(f"plate {text!r} is empty once spaces and dashes are removed")
    rows = _confident(plates, include_low_confidence).filter(pl.col("text") == wanted)
    return (
        rows.select(id="id", label=pl.lit(wanted), camera_id="camera_id", start="first_ts", end="last_ts")
        .cast(EVENT_SCHEMA)
        .sort("start")
    )


def sighting_events(sightings: pl.DataFrame, label: str = "subject") -> pl.DataFrame:
    """Face-search sightings (:func:`sightings_frame` / :func:`read_sightings_json`) as events."""
    events = sightings.select(
        id="face_id", label=pl.lit(label), camera_id="camera_id", start="track_start", end="track_end"
    )
    return events.cast(EVENT_SCHEMA).sort("start")


def co_occurrences(
    first: pl.DataFrame, second: pl.DataFrame, *, window: dt.timedelta, same_camera: bool = True
) -> pl.DataFrame:
    """Pairs of events (one of ``first``, one of ``second``) within ``window`` of each other.

    Events are frames of id, label, camera_id, start, end (:func:`plate_events`,
    :func:`sighting_events`). The gap is the time between the two intervals (0 when
    they overlap); a pair counts when gap <= window. With ``same_camera`` (default)
    both must be at one camera. Columns: camera_id, first_id, first_label,
    first_start, first_end, second_id, second_label, second_camera_id, second_start,
    second_end, gap_s; earliest first.
    """
    if window < dt.timedelta(0):
        raise BadInputError(f"co-occurrence window {window} must not be negative")
    for name, frame in (("first", first), ("second", second)):
        missing = [c for c in EVENT_SCHEMA if c not in frame.columns]
        if missing:
            raise BadInputError(
                f"{name} events lack columns {missing}: make them with plate_events or sighting_events"
            )
    a = first.select(*EVENT_SCHEMA).cast(EVENT_SCHEMA).rename({c: f"first_{c}" for c in EVENT_SCHEMA})
    b = second.select(*EVENT_SCHEMA).cast(EVENT_SCHEMA).rename({c: f"second_{c}" for c in EVENT_SCHEMA})
    if same_camera:
        pairs = a.join(b, left_on="first_camera_id", right_on="second_camera_id", how="inner", coalesce=False)
    else:
        pairs = a.join(b, how="cross")
    later_start = pl.max_horizontal("first_start", "second_start")
    earlier_end = pl.min_horizontal("first_end", "second_end")
    gap = pl.max_horizontal(later_start - earlier_end, pl.lit(dt.timedelta(0)))
    pairs = pairs.with_columns(gap=gap).filter(pl.col("gap") <= pl.lit(window))
    return pairs.select(
        camera_id="first_camera_id",
        first_id="first_id",
        first_label="first_label",
        first_start="first_start",
        first_end="first_end",
        second_id="second_id",
        second_label="second_label",
        second_camera_id="second_camera_id",
        second_start="second_start",
        second_end="second_end",
        gap_s=_seconds(pl.col("gap")),
    ).sort("first_start", "second_start")
