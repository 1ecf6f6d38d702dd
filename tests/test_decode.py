"""Sampling a segment: skipping unsampled non-reference frames changes nothing a user sees."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from citywatch.errors import BadInputError
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.index.decode import DecodeStats, MotionGate, sample_frames


def write_clip(
    path: Path, *, fps: int, gop_s: float, seconds: float, bframes: int = 3, container_format: str = "mp4"
) -> Path:
    """A small H.264 clip: a square walking over noise, keyframes every ``gop_s`` seconds."""
    rng = np.random.default_rng(7)
    background = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(
            "libx264", rate=fps, options={"crf": "28", "preset": "veryfast", "bf": str(bframes)}
        )
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = round(gop_s * fps)
        for i in range(round(seconds * fps)):
            image = background.copy()
            x = 10 + 4 * i % 260
            image[100:150, x : x + 40] = (0, 0, 255)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def sample(
    path: Path, *, fps: float, skip: bool, threads: int = 1
) -> tuple[list[tuple[float, bool, np.ndarray]], DecodeStats]:
    stats = DecodeStats()
    storage = Storage(Settings(storage__root=str(path.parent)))
    frames = [
        (f.offset_s, f.moving, f.image)
        for f in sample_frames(
            storage,
            str(path),
            sample_fps=fps,
            gate=MotionGate(20, 0.002),
            stats=stats,
            threads=threads,
            skip_unsampled=skip,
        )
    ]
    return frames, stats


@pytest.mark.parametrize(
    ("fps", "gop_s", "bframes", "sample_fps", "threads"),
    [
        (15, 2.0, 3, 2.0, 1),  # the sample's encoding
        (25, 1.0, 3, 2.0, 1),
        (25, 2.0, 2, 3.0, 2),  # frame threads get the per-packet skip setting too
        (20, 1.0, 0, 2.0, 1),  # no B-frames: every frame is a reference, nothing skipped
    ],
)
def test_skipping_unsampled_frames_samples_the_same_frames(
    tmp_path: Path, fps: int, gop_s: float, bframes: int, sample_fps: float, threads: int
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", fps=fps, gop_s=gop_s, seconds=4.5, bframes=bframes)
    full, full_stats = sample(clip, fps=sample_fps, skip=False, threads=threads)
    planned, planned_stats = sample(clip, fps=sample_fps, skip=True, threads=threads)

    assert [t for t, _, _ in planned] == [t for t, _, _ in full]  # same sampled timestamps
    assert len(full) == int(4.5 * sample_fps) or len(full) == int(4.5 * sample_fps) + 1
    assert [m for _, m, _ in planned] == [m for _, m, _ in full]  # same motion verdicts
    for (_, _, a), (_, _, b) in zip(full, planned, strict=True):
        assert np.array_equal(a, b)  # same pixels
    assert planned_stats.duration_s == full_stats.duration_s  # the segment's end is unchanged
    assert full_stats.frames_decoded == round(4.5 * fps)
    if bframes:
        assert planned_stats.frames_decoded < 0.8 * full_stats.frames_decoded
    else:
        assert planned_stats.frames_decoded == full_stats.frames_decoded


@pytest.mark.parametrize(
    ("container_format", "planned"), [("mpegts", True), ("avi", False), ("matroska", False)]
)
def test_other_containers_sample_the_same_frames(
    tmp_path: Path, container_format: str, planned: bool
) -> None:
    """AVI packet times are in decode order and Matroska has no decode times: no planning there."""
    clip = write_clip(
        tmp_path / "clip.vid", fps=25, gop_s=1.0, seconds=4.0, container_format=container_format
    )
    full, full_stats = sample(clip, fps=2.0, skip=False)
    planned_frames, planned_stats = sample(clip, fps=2.0, skip=True)
    assert [t for t, _, _ in planned_frames] == [t for t, _, _ in full]
    for (_, _, a), (_, _, b) in zip(full, planned_frames, strict=True):
        assert np.array_equal(a, b)
    assert planned_stats.duration_s == full_stats.duration_s
    assert (planned_stats.frames_decoded < full_stats.frames_decoded) is planned


@pytest.mark.parametrize("skip", [True, False])
def test_unreadable_video_is_a_clear_error(tmp_path: Path, skip: bool) -> None:
    clip = write_clip(tmp_path / "clip.mp4", fps=15, gop_s=1.0, seconds=2.0)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 255, 50_000, dtype=np.uint8).tobytes())
    for bad in (truncated, garbage):
        with pytest.raises(
            BadInputError, match=f"segment {bad} (is not a readable video|is corrupt|holds no)"
        ):
            sample(bad, fps=2.0, skip=skip)
