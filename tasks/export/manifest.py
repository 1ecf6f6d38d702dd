"""Assemble an export's manifest from what the passes did (signing is the flow's)."""

from __future__ import annotations

import datetime as dt
import posixpath

import av

import citywatch
from citywatch.governance.manifest import (
    FORMAT,
    EncodingEntry,
    ExportManifest,
    FileEntry,
    GapEntry,
    RedactionEntry,
    RequestEntry,
    SignerEntry,
    SourceEntry,
    SubjectEntry,
    iso,
)
from citywatch.settings import Settings
from citywatch.tasks.export.clip import ClipPlan
from citywatch.tasks.export.render import RenderedExport
from citywatch.tasks.export.request import ResolvedRequest
from citywatch.tasks.export.scan import ClipScan


def _request_entry(resolved: ResolvedRequest, pad_s: float | None) -> RequestEntry:
    req, subject = resolved.request, resolved.subject
    return RequestEntry(
        kind=req.kind,
        sighting_id=resolved.sighting_id,
        alert_id=req.alert_id,
        probe_sha256=subject.probe_sha256 if subject else None,
        camera_id=resolved.camera_id,
        start=iso(resolved.start),
        end=iso(resolved.end),
        pad_s=pad_s,
    )


def _sources(plan: ClipPlan, scan: ClipScan) -> list[SourceEntry]:
    spans = {span.source: span for span in scan.spans}
    out = []
    for number, src in enumerate(plan.sources):
        span = spans.get(number)
        out.append(
            SourceEntry(
                segment_id=src.segment_id,
                uri=src.uri,
                sha256=src.sha256,
                size_bytes=src.size_bytes,
                segment_start=iso(src.segment_start),
                segment_end=iso(src.segment_end),
                used_from=iso(span.first_ts if span else src.take_from),
                used_to=iso(span.last_ts if span else src.take_to),
                clip_first_frame=span.first_frame if span else -1,
                clip_frames=span.frames if span else 0,
            )
        )
    return out


def build_manifest(
    *,
    export_id: str,
    case_id: str,
    justification: str,
    user: str,
    created: dt.datetime,
    resolved: ResolvedRequest,
    plan: ClipPlan,
    scan: ClipScan,
    rendered: RenderedExport,
    settings: Settings,
    signer: SignerEntry,
) -> ExportManifest:
    subject = resolved.subject
    pad_s = (
        None
        if resolved.request.camera_id
        else (settings.export.pad_s if resolved.request.pad_s is None else resolved.request.pad_s)
    )
    clip = rendered.clip
    return ExportManifest(
        format=FORMAT,
        export_id=export_id,
        case_id=case_id,
        justification=justification,
        exported_by=user,
        created=iso(created),
        camera_id=plan.camera.id,
        camera_name=plan.camera.name,
        request=_request_entry(resolved, pad_s),
        time_range={
            "requested_start": iso(plan.start),
            "requested_end": iso(plan.end),
            "first_frame": iso(clip.first_ts),
            "last_frame": iso(clip.last_ts),
        },
        sources=_sources(plan, scan),
        gaps=[GapEntry(iso(g.start), iso(g.end), g.reason) for g in plan.gaps],
        subject=SubjectEntry(
            matched_by=rendered.subject.matched_by,
            tracks=list(rendered.subject.tracks),
            distance=rendered.subject.distance,
            threshold=subject.threshold if subject else None,
            face_id=subject.face_id if subject else None,
            track_id=subject.track_id if subject else None,
            frames_detected=rendered.subject_frames_detected,
        ),
        redaction=RedactionEntry(
            mode=settings.redact.mode,
            face_margin=settings.redact.face_margin,
            det_threshold=settings.redact.det_threshold,
            min_face_px=settings.redact.min_face_px,
            hold_frames=settings.redact.hold_frames,
            plates=settings.redact.plates,
            privacy_masks=plan.camera.privacy_masks,
            tracks_obscured=rendered.tracks_obscured,
            tracks_kept=rendered.tracks_kept,
        ),
        models={"face_detector": scan.detector, "face_embedder": scan.embedder},
        encoding=EncodingEntry(
            codec=clip.codec,
            crf=settings.export.crf,
            preset=settings.export.preset,
            width=clip.width,
            height=clip.height,
            frames=clip.frames,
            fps=round(scan.fps, 4),
            first_frame=iso(clip.first_ts),
            last_frame=iso(clip.last_ts),
            audio="not exported",
        ),
        software={
            "citywatch": citywatch.__version__,
            "pyav": av.__version__,
            "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        },
        files={
            "clip": FileEntry(posixpath.basename(clip.uri), clip.sha256, clip.size_bytes),
            "redaction_log": FileEntry(
                posixpath.basename(rendered.log.uri), rendered.log.sha256, rendered.log.size_bytes
            ),
        },
        signer=signer,
    )
