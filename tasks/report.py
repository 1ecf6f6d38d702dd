"""Self-contained HTML reports (thumbnails inlined, so they work for s3 roots too)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from dataclasses import dataclass

from citywatch.errors import CitywatchError
from citywatch.storage import Storage
from tasks.search import Sighting


@dataclass(frozen=True, slots=True)
class SearchHeader:
    title: str
    probe_source: str
    probe_sha256: str
    filters: str
    threshold: float
    model: str
    created: dt.datetime


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def sighting_json(s: Sighting) -> dict[str, object]:
    """The JSON form of a sighting (the CLI's --json output)."""
    return {
        "rank": s.rank, "face_id": s.face_id, "camera_id": s.camera_id,
        "camera_name": s.camera_name, "ts": iso(s.ts), "track_start": iso(s.track_start),
        "track_end": iso(s.track_end), "distance": round(s.distance, 4),
        "similarity": round(s.similarity, 4), "bbox": [round(v, 1) for v in s.bbox],
        "segment_uri": s.segment_uri, "thumb_uri": s.thumb_uri, "lat": s.lat, "lon": s.lon,
    }


def _img(storage: Storage, uri: str) -> str:
    try:
        data = storage.read_bytes(uri)
    except CitywatchError:
        return "<em>thumbnail missing</em>"
    return f'<img src="data:image/jpeg;base64,{base64.b64encode(data).decode()}" alt="thumbnail">'


def render_search_report(storage: Storage, header: SearchHeader, sightings: list[Sighting]) -> str:
    esc = html.escape
    rows = "\n".join(
        f"<tr><td>{s.rank}</td><td>{_img(storage, s.thumb_uri)}</td>"
        f"<td>{esc(s.camera_id)}<br><small>{esc(s.camera_name)}</small></td>"
        f"<td>{esc(iso(s.ts))}<br><small>track {esc(iso(s.track_start))} .. "
        f"{esc(iso(s.track_end))}</small></td><td>{s.distance:.3f}</td><td>{s.similarity:.2f}</td>"
        f"<td><small>{esc(s.segment_uri)}</small></td></tr>"
        for s in sightings)
    data = esc(json.dumps([sighting_json(s) for s in sightings]))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{esc(header.title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left}}
img{{max-height:96px}} .note{{background:#fff3cd;padding:8px}}</style></head>
<body><h1>{esc(header.title)}</h1>
<p class="note">Candidate matches only. A match score is never evidence on its own:
a trained reviewer must confirm every sighting before any action.</p>
<table><tr><th>probe</th><td>{esc(header.probe_source)} (sha256 {esc(header.probe_sha256[:16])}...)</td></tr>
<tr><th>filters</th><td>{esc(header.filters)}</td></tr>
<tr><th>threshold</th><td>{header.threshold:.3f} (L2 distance, {esc(header.model)})</td></tr>
<tr><th>created</th><td>{esc(iso(header.created))}</td></tr>
<tr><th>sightings</th><td>{len(sightings)}</td></tr></table>
<h2>Sightings</h2>
<table><tr><th>#</th><th>thumbnail</th><th>camera</th><th>time (UTC)</th><th>distance</th>
<th>similarity</th><th>segment</th></tr>
{rows or '<tr><td colspan="7">no sighting under the threshold</td></tr>'}
</table>
<script type="application/json" id="sightings">{data}</script>
</body></html>
"""
