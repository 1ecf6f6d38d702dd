"""The analyst API behind the notebooks (``from citywatch import analytics as cw``).

The tables and the role check are in ``api``; the helpers over Polars frames are in
``activity``, ``plates`` and ``health``. See docs/analytics.md.
"""

from citywatch.analytics.api import (
    AnalyticsTables,
    PipelineHealth,
    Slice,
    TableName,
    activity,
    camera_sequence,
    co_occurrences,
    dwell_summary,
    failures_by_reason,
    index_lag,
    open_tables,
    pipeline_health,
    plate_events,
    plate_frequency,
    plate_visits,
    read_sightings_json,
    repeat_visits,
    segments_by_state,
    sighting_events,
    sightings_frame,
    subject_timeline,
    throughput,
    tracks,
)

__all__ = [
    "AnalyticsTables",
    "PipelineHealth",
    "Slice",
    "TableName",
    "activity",
    "camera_sequence",
    "co_occurrences",
    "dwell_summary",
    "failures_by_reason",
    "index_lag",
    "open_tables",
    "pipeline_health",
    "plate_events",
    "plate_frequency",
    "plate_visits",
    "read_sightings_json",
    "repeat_visits",
    "segments_by_state",
    "sighting_events",
    "sightings_frame",
    "subject_timeline",
    "throughput",
    "tracks",
]
