"""A short clip around one sighting for the console's player: privacy-masked, not evidence.

The same footage plan as an export (``plan_clip``: only indexed segments whose files are
unchanged, gaps reported) and the same encoder (``encode_frames``: H.264 yuv420p MP4,
which browsers play), with the index at the front so a browser can start at once, and
its own quality settings (``play.crf``, ``play.preset``: rendered while the user waits). Only
the camera's privacy masks are applied (the investigator is looking for the person;
bystanders are obscured in exports, which leave the system). The clip is returned as
bytes for the service to keep in memory; nothing is written to storage and nothing is
signed: an investigator who needs the footage outside the console exports it.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citywatch.errors import NotFoundError
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.export.clip import ClipFrame, Gap, encode_frames, iter_clip_frames, plan_clip
from citywatch.tasks.export.redact import FrameRedaction, FrameRedactor, RedactionStyle
from citywatch.tasks.index.decode import open_segment

NO_BOXES = FrameRedaction()


@dataclass(frozen=True, slots=True)
class PreviewClip:
    """An MP4 (bytes) of one camera around a moment, privacy masks applied."""

    data: bytes
    camera_id: str
    camera_name: str
    moment: dt.datetime  # the sighting
    first_ts: dt.datetime  # the clip's first frame (its time 0)
    last_ts: dt.datetime
    frames: int
    masks: int  # privacy-mask polygons applied to every frame
    gaps: tuple[Gap, ...]

    @property
    def moment_s(self) -> float:
        """Where the sighting is in the clip (seconds from its first frame)."""
        return max(0.0, (self.moment - self.first_ts).total_seconds())

    def start_s(self, lead_s: float) -> float:
        """Where the player starts: ``lead_s`` before the sighting, not before the clip."""
        return max(0.0, self.moment_s - lead_s)


def _source_fps(storage: Storage, uri: str) -> float:
    with open_segment(storage, uri) as container:
        stream = container.streams.video[0] if container.streams.video else None
        rate = stream.average_rate if stream is not None else None
        return float(rate) if rate else 10.0


def render_preview(storage: Storage, settings: Settings, camera_id: str, moment: dt.datetime) -> PreviewClip:
    """``settings.play.before_s`` before ``moment`` to ``after_s`` after it (clipped to the
    footage there is), masked with the camera's privacy masks."""
    start = moment - dt.timedelta(seconds=settings.play.before_s)
    end = moment + dt.timedelta(seconds=settings.play.after_s)
    plan = plan_clip(storage, camera_id, start, end, max_s=settings.play.before_s + settings.play.after_s + 1)
    style = RedactionStyle.from_settings(settings)
    masks = plan.camera.privacy_masks
    redactors: dict[tuple[int, int], FrameRedactor] = {}

    def mask(frame: ClipFrame) -> np.ndarray:
        if not masks:
            return frame.image
        size = (frame.image.shape[1], frame.image.shape[0])
        if size not in redactors:
            redactors[size] = FrameRedactor.build(style, masks, size[0], size[1])
        return redactors[size](frame.image, NO_BOXES)

    fps = _source_fps(storage, plan.sources[0].uri)
    with tempfile.TemporaryDirectory(prefix="citywatch-play-") as tmp:
        local = Path(tmp, "play.mp4")
        encoded = encode_frames(
            iter_clip_frames(storage, plan),
            mask,
            local,
            crf=settings.play.crf,
            preset=settings.play.preset,
            fps=fps,
            faststart=True,
        )
        if encoded is None:
            raise NotFoundError(
                f"camera {camera_id} has no frames between {start.isoformat()} and {end.isoformat()}"
            )
        data = local.read_bytes()
    return PreviewClip(
        data,
        plan.camera.id,
        plan.camera.name or plan.camera.id,
        moment,
        encoded.first_ts,
        encoded.last_ts,
        encoded.frames,
        len(masks),
        plan.gaps,
    )
