"""Second pass of an export: choose the subject, plan the redactions, encode, log.

Writes ``<key_base>.mp4`` (redacted H.264) and ``<key_base>.redactions.json`` (the
frame times and every box obscured or kept clear, so a reviewer can see what was
hidden and why) under the storage root.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from citywatch.errors import TransientError
from citywatch.governance.manifest import iso
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.export.clip import ClipFrame, ClipPlan, RenderedClip, render_clip
from citywatch.tasks.export.redact import FrameRedactor, RedactionStyle
from citywatch.tasks.export.redact_plan import (
    SubjectChoice,
    SubjectHint,
    TrackRedaction,
    choose_subject,
    plan_redactions,
)
from citywatch.tasks.export.request import SubjectRef
from citywatch.tasks.export.scan import ClipScan

LOG_FORMAT = "citywatch-redactions/1"


@dataclass(frozen=True, slots=True)
class FileWritten:
    uri: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class RenderedExport:
    clip: RenderedClip
    log: FileWritten
    subject: SubjectChoice
    subject_frames_detected: int
    tracks_obscured: int
    tracks_kept: int


def subject_hint(subject: SubjectRef | None, scan: ClipScan) -> SubjectHint | None:
    if subject is None:
        return None
    frame = scan.frame_at(subject.ts) if subject.ts is not None and scan.frames else None
    return SubjectHint(subject.threshold, frame, subject.bbox)


def redaction_log(
    export_id: str, scan: ClipScan, masks: list[list[list[float]]], log: list[TrackRedaction]
) -> bytes:
    document = {
        "format": LOG_FORMAT,
        "export_id": export_id,
        "frames": scan.frames,
        "frame_times": [iso(t) for t in scan.frame_times],
        "privacy_masks": masks,
        "box_columns": ["frame", "x1", "y1", "x2", "y2", "how: d detected, i interpolated, h held"],
        "tracks": [
            {"track": t.track, "kind": t.kind, "role": t.role, "boxes": [list(b) for b in t.boxes]}
            for t in log
        ],
    }
    return (json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n").encode()


def render_redacted(
    storage: Storage,
    settings: Settings,
    plan: ClipPlan,
    scan: ClipScan,
    subject: SubjectRef | None,
    key_base: str,
    export_id: str,
) -> RenderedExport:
    """Redact and encode the clip; write it and its redaction log."""
    choice = choose_subject(scan.tracks, subject_hint(subject, scan))
    frames, log = plan_redactions(
        scan.tracks,
        choice,
        n_frames=scan.frames,
        width=scan.width,
        height=scan.height,
        hold=settings.redact.hold_frames,
        margin=settings.redact.face_margin,
    )
    redactor = FrameRedactor.build(
        RedactionStyle.from_settings(settings), plan.camera.privacy_masks, scan.width, scan.height
    )

    def redact(frame: ClipFrame) -> np.ndarray:
        if frame.index >= len(frames):
            raise TransientError(
                f"the clip decoded to more frames than its scan ({scan.frames}): "
                "a source changed during the export; run it again"
            )
        return redactor(frame.image, frames[frame.index])

    clip = render_clip(
        storage,
        plan,
        f"{key_base}.mp4",
        redact,
        crf=settings.export.crf,
        preset=settings.export.preset,
        fps=scan.fps,
    )
    if clip.frames != scan.frames:
        raise TransientError(
            f"the clip decoded to {clip.frames} frames, its scan to "
            f"{scan.frames}: a source changed during the export; run it again"
        )
    data = redaction_log(export_id, scan, plan.camera.privacy_masks, log)
    log_uri = storage.write_bytes(f"{key_base}.redactions.json", data)
    kept = set(choice.tracks)
    detected = {f for t in scan.tracks if t.index in kept for f in t.frames}
    return RenderedExport(
        clip=clip,
        log=FileWritten(log_uri, hashlib.sha256(data).hexdigest(), len(data)),
        subject=choice,
        subject_frames_detected=len(detected),
        tracks_obscured=sum(1 for t in log if t.role == "obscured"),
        tracks_kept=sum(1 for t in log if t.role == "subject"),
    )
