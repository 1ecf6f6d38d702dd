"""The plate branch's cost levers (issue #17) and the accuracy each protects."""

from __future__ import annotations

import numpy as np
import pytest

from citywatch.sample.plate_render import degrade_plate, paste_plate, random_hk_plate, render_plate
from citywatch.settings import PlatesSettings, TrackingSettings
from citywatch.tasks.index.plate_cost import band_windows, may_hold_plate, plate_bands
from citywatch.tasks.index.plates import SegmentPlates

CONTRAST = PlatesSettings().text_gate_contrast
MIN_PX = PlatesSettings().text_gate_min_px


def _street(rng: np.random.Generator) -> np.ndarray:
    """A grey street with sensor noise and a car body (no plate yet)."""
    frame = np.full((720, 1280, 3), 110, np.float32) + rng.normal(0.0, 3.0, (720, 1280, 3))
    frame[300:560, 380:900] = rng.uniform(30, 220, 3)
    return np.clip(frame, 0, 255).astype(np.uint8)


def _plate_on_a_car(
    rng: np.random.Generator, style: str, width: int
) -> tuple[np.ndarray, tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A street frame with a ``width`` px plate (blurred, tilted) on a car: the frame, the
    box of the plate's glyphs (inside its border and margin), a region round the car."""
    frame = _street(rng)
    plate = degrade_plate(
        render_plate(random_hk_plate(rng), style=style, width_px=width, rng=rng),  # type: ignore[arg-type]
        rng,
        blur=float(rng.uniform(0.0, 1.5)),
        rotation_deg=float(rng.uniform(-5, 5)),
    )
    x, y = 640 - width // 2, 480
    frame = paste_plate(frame, plate, x, y)
    ph, pw = plate.shape[:2]
    glyphs = (x + pw // 10, y + ph // 6, x + pw - pw // 10, y + ph - ph // 6)
    region = (max(0, x - 2 * width), max(0, y - width), min(1280, x + 3 * width), min(720, y + width))
    return frame, glyphs, region


@pytest.mark.parametrize("style", ["front", "rear"])
def test_the_text_gate_passes_plates_from_40_to_250_px(style: str) -> None:
    assert CONTRAST > 0  # on by default
    """Recall: every plate of 40-250 px (blurred, warped, on a car) opens the gate, in a
    region around the car as the pipeline reads it."""
    rng = np.random.default_rng(3)
    missed = []
    for width in (40, 44, 50, 60, 80, 120, 180, 250):
        for _ in range(3):
            frame, _glyphs, region = _plate_on_a_car(rng, style, width)
            if not may_hold_plate(frame, region, min_plate_px=MIN_PX, min_contrast=CONTRAST):
                missed.append(width)
    assert not missed


@pytest.mark.parametrize("style", ["front", "rear"])
def test_band_windows_hold_the_whole_plate(style: str) -> None:
    """With plates.detect_in_bands, text detection sees only windows round the stroke
    bands: the glyphs of every 40-250 px plate the gate passes (one or two lines) lie
    wholly inside one window."""
    rng = np.random.default_rng(5)
    cut, shares = [], []
    for width in (40, 50, 60, 80, 120, 180, 250):
        for _ in range(3):
            frame, box, region = _plate_on_a_car(rng, style, width)
            bands = plate_bands(frame, region, min_plate_px=MIN_PX, min_contrast=CONTRAST)
            if not bands:
                continue  # the gate's own misses (its recall is the test above's)
            windows = band_windows(bands, region)
            if not any(
                w[0] <= box[0] and w[1] <= box[1] and box[2] <= w[2] and box[3] <= w[3] for w in windows
            ):
                cut.append((width, windows, box))
            area = sum((w[2] - w[0]) * (w[3] - w[1]) for w in windows)
            shares.append(area / ((region[2] - region[0]) * (region[3] - region[1])))
    assert not cut
    assert float(np.median(shares)) < 0.6  # most regions are read through smaller windows


def test_band_windows_merge_and_fall_back_to_the_region() -> None:
    region = (0, 0, 400, 300)
    assert band_windows([(100, 100, 160, 110), (190, 100, 240, 110)], region) == [(66, 86, 274, 124)]
    assert band_windows([(0, 0, 400, 120), (0, 150, 400, 290)], region) == [region]


def test_the_text_gate_skips_regions_without_glyphs() -> None:
    rng = np.random.default_rng(4)
    flat = np.full((720, 1280, 3), 120, np.uint8)
    noisy = np.clip(flat + rng.normal(0, 4, flat.shape), 0, 255).astype(np.uint8)
    ramp = np.repeat(np.repeat(np.linspace(0, 255, 1280, dtype=np.uint8)[None, :, None], 720, 0), 3, 2)
    person = noisy.copy()  # a walking person's blob: one dark, tall shape
    person[200:600, 500:620] = 40
    for image in (flat, noisy, ramp, person):
        assert not may_hold_plate(image, (300, 150, 800, 650), min_plate_px=MIN_PX, min_contrast=CONTRAST)


class _Reader:
    target_side_px = 480
    max_upscale = 4.0

    def __init__(self) -> None:
        self.calls = 0

    def read(self, image: np.ndarray, region: tuple[int, int, int, int]) -> list:  # noqa: ANN401
        self.calls += 1
        return []


def test_segment_plates_reads_only_regions_the_gate_passes() -> None:
    rng = np.random.default_rng(5)
    frame = _street(rng)
    plate = render_plate("AB1234", style="front", width_px=90, rng=rng)
    frame = paste_plate(frame, plate, 600, 500)
    settings = dict(region_min_px=0, region_max_aspect=0.0, full_frame_share=1.0, settled_reread_s=0.0)
    regions = [(560, 460, 760, 560), (100, 100, 220, 220)]  # the plate; flat street
    counts = []
    for contrast in (0, CONTRAST):
        reader = _Reader()
        plates = SegmentPlates(
            reader,  # type: ignore[arg-type]
            PlatesSettings(text_gate_contrast=contrast, **settings),  # type: ignore[arg-type]
            TrackingSettings(),
        )
        plates.add_frame(0.0, frame, regions)
        counts.append((reader.calls, plates.gated))
    assert counts == [(2, 0), (1, 1)]


class _WindowLog(_Reader):
    def __init__(self) -> None:
        super().__init__()
        self.windows: list[tuple[int, int, int, int]] = []

    def read(self, image: np.ndarray, region: tuple[int, int, int, int]) -> list:  # noqa: ANN401
        self.windows.append(region)
        return super().read(image, region)


def test_the_burned_in_clock_gets_no_text_detection() -> None:
    """plates.skip_overlay_bands: a moving region reaching up into the camera's overlay
    (the burned-in clock and name) is read round its plate only, not round the clock
    (whose reads were dropped anyway); the plate's window is the same either way."""
    import cv2

    rng = np.random.default_rng(7)
    frame, glyphs, _ = _plate_on_a_car(rng, "rear", 120)
    overlay = [0, 0, 600, 50]
    cv2.putText(
        frame, "2026-11-20 08:00:12 CAM-NATHAN-RD", (8, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255,) * 3, 2
    )
    region = (0, 0, 1000, 620)  # the car's blob grown up to the top of the frame
    settings = dict(region_min_px=0, region_max_aspect=0.0, full_frame_share=1.0, settled_reread_s=0.0)
    seen = {}
    for skip in (False, True):
        reader = _WindowLog()
        plates = SegmentPlates(
            reader,  # type: ignore[arg-type]
            PlatesSettings(skip_overlay_bands=skip, **settings),  # type: ignore[arg-type]
            TrackingSettings(),
            [overlay],
        )
        plates.add_frame(0.0, frame, [region])
        seen[skip] = reader.windows

    def holds_plate(w: tuple[int, int, int, int]) -> bool:
        return w[0] <= glyphs[0] and w[1] <= glyphs[1] and glyphs[2] <= w[2] and glyphs[3] <= w[3]

    def on_clock(w: tuple[int, int, int, int]) -> bool:
        return w[1] < overlay[3] and w[0] < overlay[2]

    assert any(on_clock(w) for w in seen[False])  # before: the clock was detected too
    assert not any(on_clock(w) for w in seen[True])
    assert [w for w in seen[True] if holds_plate(w)] == [w for w in seen[False] if holds_plate(w)] != []
