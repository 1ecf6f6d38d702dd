"""Self-contained HTML reports (thumbnails inlined, so they work for s3 roots too)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from citywatch.errors import CitywatchError
from citywatch.sightings import PlateSighting, Sighting
from citywatch.storage import Storage
from citywatch.times import format_utc

esc = html.escape


@dataclass(frozen=True, slots=True)
class ReportHeader:
    title: str
    rows: tuple[tuple[str, str], ...]  # (label, value) shown under the title
    created: dt.datetime


def sighting_json(s: Sighting) -> dict[str, object]:
    """The JSON form of a face sighting (the CLI's --json output)."""
    return {
        "rank": s.rank,
        "face_id": s.face_id,
        "camera_id": s.camera_id,
        "camera_name": s.camera_name,
        "ts": format_utc(s.ts),
        "track_start": format_utc(s.track_start),
        "track_end": format_utc(s.track_end),
        "distance": round(s.distance, 4),
        "similarity": round(s.similarity, 4),
        "bbox": [round(v, 1) for v in s.bbox],
        "segment_uri": s.segment_uri,
        "thumb_uri": s.thumb_uri,
        "lat": s.lat,
        "lon": s.lon,
    }


def plate_json(s: PlateSighting) -> dict[str, object]:
    """The JSON form of a plate sighting."""
    p = s.plate
    return {
        "rank": s.rank,
        "plate_id": p.id,
        "text": p.text,
        "score": round(s.score, 3),
        "exact": s.score == 0.0,
        "camera_id": p.camera_id,
        "camera_name": s.camera_name,
        "ts": format_utc(p.ts),
        "first_ts": format_utc(p.first_ts),
        "last_ts": format_utc(p.last_ts),
        "confidence": round(p.confidence, 3),
        "reads": p.reads,
        "low_confidence": p.low_confidence,
        "bbox": [round(v, 1) for v in p.bbox],
        "segment_uri": s.segment_uri,
        "thumb_uri": p.thumb_uri,
        "lat": p.lat,
        "lon": p.lon,
    }


def _img(storage: Storage, uri: str) -> str:
    try:
        data = storage.read_bytes(uri)
    except CitywatchError:
        return "<em>thumbnail missing</em>"
    return f'<img src="data:image/jpeg;base64,{base64.b64encode(data).decode()}" alt="thumbnail">'


def _page(
    header: ReportHeader,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    payload: list[dict[str, object]],
) -> str:
    meta = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in header.rows)
    body = "\n".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    empty = f'<tr><td colspan="{len(columns)}">no sighting</td></tr>'
    heads = "".join(f"<th>{esc(c)}</th>" for c in columns)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(header.title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}
td,th{{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left}}
img{{max-height:96px}} .note{{background:#fff3cd;padding:8px}}</style></head>
<body><h1>{esc(header.title)}</h1>
<p class="note">Candidate matches only. A match score is never evidence on its own:
a trained reviewer must confirm every sighting before any action.</p>
<table>{meta}<tr><th>created</th><td>{esc(format_utc(header.created))}</td></tr>
<tr><th>sightings</th><td>{len(rows)}</td></tr></table>
<h2>Sightings</h2>
<table><tr>{heads}</tr>
{body or empty}
</table>
<script type="application/json" id="sightings">{esc(json.dumps(payload))}</script>
</body></html>
"""


def render_search_report(storage: Storage, header: ReportHeader, sightings: list[Sighting]) -> str:
    rows = [
        [
            str(s.rank),
            _img(storage, s.thumb_uri),
            f"{esc(s.camera_id)}<br><small>{esc(s.camera_name)}</small>",
            f"{esc(format_utc(s.ts))}<br><small>track {esc(format_utc(s.track_start))} .. "
            f"{esc(format_utc(s.track_end))}</small>",
            f"{s.distance:.3f}",
            f"{s.similarity:.2f}",
            f"<small>{esc(s.segment_uri)}</small>",
        ]
        for s in sightings
    ]
    return _page(
        header,
        ["#", "thumbnail", "camera", "time (UTC)", "distance", "similarity", "segment"],
        rows,
        [sighting_json(s) for s in sightings],
    )


def render_plate_report(storage: Storage, header: ReportHeader, sightings: list[PlateSighting]) -> str:
    rows = []
    for s in sightings:
        p = s.plate
        where = f"{p.lat:.5f}, {p.lon:.5f}" if p.lat is not None and p.lon is not None else "unknown"
        flag = " (low confidence)" if p.low_confidence else ""
        rows.append(
            [
                str(s.rank),
                _img(storage, p.thumb_uri),
                f"<b>{esc(p.text)}</b>{esc(flag)}<br><small>{p.reads} reads</small>",
                "exact" if s.score == 0 else f"{s.score:.1f} edits",
                f"{esc(p.camera_id)}<br><small>{esc(s.camera_name)}</small>",
                f"{esc(format_utc(p.first_ts))} .. {esc(format_utc(p.last_ts))}",
                esc(where),
            ]
        )
    return _page(
        header,
        ["#", "thumbnail", "plate", "match", "camera", "time (UTC)", "location"],
        rows,
        [plate_json(s) for s in sightings],
    )
