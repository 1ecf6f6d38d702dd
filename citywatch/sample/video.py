"""Render one camera segment of the sample and encode it as H.264 MP4 with PyAV.

x264 runs with a fixed thread count (``preset=veryfast``, ``crf=23``, GOP of 2 s), so
the same inputs give the same bitstream on any machine; segments are independent and
may be rendered on parallel threads (PyAV releases the GIL while encoding).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from citywatch.sample.cameras import CameraSite
from citywatch.sample.plan import SampleConfig
from citywatch.sample.scene import SensorLook, Sprite, VideoBackground, draw_osd
from citywatch.times import format_utc

log = logging.getLogger(__name__)

_NOISE_SIGMA = 2.0
_X264_THREADS = 1  # fixed, not per machine: x264 output depends on its thread count


@dataclass(frozen=True)
class SegmentJob:
    """Everything needed to render one segment; jobs share nothing mutable."""

    path: Path
    site: CameraSite
    camera_index: int
    segment_index: int
    start: datetime
    sprites: tuple[Sprite, ...]  # people now; vehicles later
    cfg: SampleConfig


def _open_stream(container: av.container.OutputContainer, cfg: SampleConfig) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=cfg.fps, options={"crf": "23", "preset": "veryfast"})
    stream.width, stream.height = cfg.width, cfg.height
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, cfg.fps)
    stream.codec_context.time_base = Fraction(1, cfg.fps)
    stream.codec_context.thread_count = _X264_THREADS
    stream.codec_context.gop_size = 2 * cfg.fps
    return stream


def render_segment(job: SegmentJob) -> Path:
    """Render and encode ``job``; the file appears atomically at ``job.path``."""
    cfg = job.cfg
    background = job.site.open_background(cfg.size)
    look = SensorLook.create(np.random.default_rng([cfg.seed, job.camera_index]), cfg.size, _NOISE_SIGMA)
    noise_rng = np.random.default_rng([cfg.seed, job.camera_index, job.segment_index])
    job.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.path.with_name(f".{job.path.name}.{os.getpid()}.tmp")
    first_frame = job.segment_index * cfg.frames_per_segment  # camera-time frame numbers
    try:
        with av.open(str(tmp), "w", format="mp4") as container:
            container.metadata["creation_time"] = format_utc(job.start.replace(microsecond=0), "microseconds")
            stream = _open_stream(container, cfg)
            for i in range(cfg.frames_per_segment):
                t = (first_frame + i) / cfg.fps  # the same floats the ground truth uses
                frame = background.frame_at(t)
                active = [sp for sp in job.sprites if sp.t_start <= t <= sp.t_end]
                for sprite in sorted(active, key=lambda sp: sp.depth(t)):
                    sprite.draw(frame, t)
                frame = look.apply(frame, t, int(noise_rng.integers(1 << 16)))
                wall = job.start + timedelta(seconds=i / cfg.fps)
                draw_osd(frame, f"{wall:%Y-%m-%d %H:%M:%S}  {job.site.camera_id.upper()}")
                video_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
                video_frame.pts = i
                video_frame.time_base = Fraction(1, cfg.fps)
                container.mux(stream.encode(video_frame))
            container.mux(stream.encode(None))
        tmp.replace(job.path)
    finally:
        tmp.unlink(missing_ok=True)
        if isinstance(background, VideoBackground):
            background.close()
    log.info("wrote %s (%d frames, %d sprites)", job.path, cfg.frames_per_segment, len(job.sprites))
    return job.path
