"""Sweep stage 3, from matches to alerts: one alert row per match, the best per track,
tracks of one entry and camera folded into passes, passes already alerted dropped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from citywatch.filters import all_of, compare, is_in
from citywatch.governance.alerts import AlertState, alert_id, alerts_table
from citywatch.schemas import AlertRow, WatchlistRow
from citywatch.storage import Storage
from citywatch.tables import has_table


def alert_for(
    entry: WatchlistRow, row: dict, score: float, *, start: str, end: str, plate_text: str, now: dt.datetime
) -> AlertRow:
    """The alert one match raises: ``entry`` seen in ``row`` (a faces or plates row) at
    ``score``; ``start``/``end`` name the row's track-span columns."""
    return AlertRow(
        id=alert_id(entry.id, row["camera_id"], row["track_id"]),
        watchlist_id=entry.id,
        kind=entry.kind,
        label=entry.label,
        reason=entry.reason,
        case_id=entry.case_id,
        sighting_id=row["id"],
        segment_id=row["segment_id"],
        camera_id=row["camera_id"],
        track_id=row["track_id"],
        ts=row["ts"],
        track_start=row[start],
        track_end=row[end],
        score=round(float(score), 6),
        threshold=entry.threshold,
        thumb_uri=row["thumb_uri"],
        lat=row["lat"],
        lon=row["lon"],
        plate_text=plate_text,
        model=row["model"],
        state=AlertState.NEW.value,
        reviewed_by="",
        reviewed_at=None,
        note="",
        created_at=now,
    )


def best_per_track(alerts: Sequence[AlertRow]) -> list[AlertRow]:
    """One alert per (entry, camera, track): the lowest score, then the earliest sighting."""
    best: dict[str, AlertRow] = {}
    for alert in alerts:
        current = best.get(alert.id)
        if current is None or (alert.score, alert.ts) < (current.score, current.ts):
            best[alert.id] = alert
    return sorted(best.values(), key=lambda a: (a.ts, a.id))


def group_passes(alerts: Sequence[AlertRow], gap: dt.timedelta) -> list[AlertRow]:
    """Fold tracks of one entry on one camera that are less than ``gap`` apart into one pass.

    A tracker may split one walk past a camera (an occlusion, a segment boundary): that
    is still one pass and one alert. The pass keeps the id of its earliest track (so a
    re-run groups the same way), the best sighting of all its tracks, and their span.
    """
    ordered = sorted(alerts, key=lambda a: (a.watchlist_id, a.camera_id, a.track_start, a.track_id))
    out: list[AlertRow] = []
    for alert in ordered:
        last = out[-1] if out else None
        if (
            last is not None
            and (last.watchlist_id, last.camera_id) == (alert.watchlist_id, alert.camera_id)
            and alert.track_start <= last.track_end + gap
        ):
            best = alert if alert.score < last.score else last
            out[-1] = replace(
                best,
                id=last.id,
                track_id=last.track_id,
                track_start=last.track_start,
                track_end=max(last.track_end, alert.track_end),
            )
        else:
            out.append(alert)
    return sorted(out, key=lambda a: (a.ts, a.id))


def drop_known_passes(storage: Storage, alerts: Sequence[AlertRow], gap: dt.timedelta) -> list[AlertRow]:
    """Drop alerts whose pass already has an alert (another track of it, swept earlier).

    An alert with the *same* id is kept: writing it again is a no-op, and it keeps the
    re-run after a crash re-creating the deliveries it may lack.
    """
    if not alerts or not has_table(storage.db, AlertRow.TABLE):
        return list(alerts)
    start = min(a.track_start for a in alerts) - gap
    end = max(a.track_end for a in alerts) + gap
    query = (
        alerts_table(storage.db)
        .search()
        .where(
            all_of(
                is_in("watchlist_id", sorted({a.watchlist_id for a in alerts})),
                is_in("camera_id", sorted({a.camera_id for a in alerts})),
                compare("track_end", ">=", start),
                compare("track_start", "<=", end),
            )
        )
    )
    known = query.select(["id", "watchlist_id", "camera_id", "track_start", "track_end"])
    existing = known.limit(None).to_arrow().to_pylist()
    return [
        a
        for a in alerts
        if not any(
            k["id"] != a.id
            and (k["watchlist_id"], k["camera_id"]) == (a.watchlist_id, a.camera_id)
            and k["track_start"] - gap <= a.track_end
            and a.track_start <= k["track_end"] + gap
            for k in existing
        )
    ]
