"""The plate acceptance rule (citywatch/plate_gate.py) on drawn text lines: no OCR."""

from __future__ import annotations

import cv2
import numpy as np

from citywatch.plate_gate import GateThresholds, accepts_row, plate_gate
from citywatch.sample.plate_render import render_plate
from citywatch.settings import Settings

GRAMMAR = Settings().plates.plate_grammar()
RULE = Settings().plates.gate_thresholds()


def _text_box(image: np.ndarray, x: int, y: int) -> tuple[float, float, float, float]:
    """The dark ink's bounding box in ``image[y:, x:]``, with the margin text detection
    leaves round it (about a tenth of the text height)."""
    ink = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) < 60
    ys, xs = np.nonzero(ink[y:, x:])
    m = 0.1 * (ys.max() + 1 - ys.min())
    return (
        float(x + xs.min() - m),
        float(y + ys.min() - m),
        float(x + xs.max() + 1 + m),
        float(y + ys.max() + 1 + m),
    )


def _car_with_plate() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    frame = np.full((400, 600, 3), (60, 90, 140), np.uint8)  # a car body filling the region
    plate = render_plate("AB1234", style="front", width_px=160)
    frame[250 : 250 + plate.shape[0], 220 : 220 + plate.shape[1]] = plate
    h, w = plate.shape[:2]
    inner = frame[250 + 3 : 250 + h - 3, 220 + 5 : 220 + w - 5]
    x1, y1, x2, y2 = _text_box(np.ascontiguousarray(inner), 0, 0)
    return frame, (220 + 5 + x1, 250 + 3 + y1, 220 + 5 + x2, 250 + 3 + y2)


def test_a_plate_on_a_car_is_accepted() -> None:
    frame, box = _car_with_plate()
    verdict = plate_gate(frame, box, "AB1234", GRAMMAR, RULE, [(100, 50, 560, 400)])
    assert verdict.accepted, verdict
    assert verdict.open_sides == 0 and verdict.score == 1.0 and verdict.fits_format


def test_sign_text_on_a_wide_board_is_refused() -> None:
    wall = np.full((400, 600, 3), (200, 220, 235), np.uint8)  # a light wall, dark lettering
    cv2.putText(wall, "WHGOV", (150, 220), cv2.FONT_HERSHEY_DUPLEX, 1.2, (20, 20, 20), 3)
    box = _text_box(wall, 0, 0)
    verdict = plate_gate(wall, box, "WHGOV", GRAMMAR, RULE, [(100, 50, 560, 400)])
    assert not verdict.accepted
    assert verdict.open_sides == 4 and verdict.reason == "panel open on too many sides"


def test_text_outside_every_moving_region_or_filling_it_is_refused() -> None:
    frame, box = _car_with_plate()
    outside = plate_gate(frame, box, "AB1234", GRAMMAR, RULE, [(0, 0, 100, 100)])
    assert not outside.accepted and outside.reason == "outside the moving regions"
    tight = (int(box[0]) - 5, int(box[1]) - 5, int(box[2]) + 5, int(box[3]) + 5)  # a sign moving as a whole
    filled = plate_gate(frame, box, "AB1234", GRAMMAR, RULE, [tight])
    assert not filled.accepted and filled.reason == "too tall for its region"


def test_thresholds_come_from_the_plates_settings(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CITYWATCH_PLATES__GATE_MAX_OPEN_SIDES", "4")
    monkeypatch.setenv("CITYWATCH_PLATES__GATE_PROBE", "1.5")
    rule = Settings().plates.gate_thresholds()
    assert isinstance(rule, GateThresholds)
    assert (rule.max_open_sides, rule.probe, rule.min_contrast) == (4, 1.5, RULE.min_contrast)


def test_stored_rows_pass_the_rule_only_with_a_full_score() -> None:
    assert accepts_row(1.0, "AB1234", GRAMMAR, RULE.min_score)
    assert not accepts_row(0.75, "WHGOV", GRAMMAR, RULE.min_score)
    assert not accepts_row(None, "AB1234", GRAMMAR, RULE.min_score)


def test_a_line_that_did_not_move_is_refused() -> None:
    """A sign behind a passing car sits inside the car's moving region but did not move."""
    frame, box = _car_with_plate()
    motion = np.zeros((90, 160), bool)  # the motion gate's small mask (160 px wide)
    motion[50:90, 20:140] = True  # the car's lower part moved; the plate is at y 250-284 of 400
    region = [(100, 50, 560, 400)]
    moved = plate_gate(frame, box, "AB1234", GRAMMAR, RULE, region, motion[:, :])
    assert moved.accepted and moved.moving_share == 1.0
    still = plate_gate(frame, box, "AB1234", GRAMMAR, RULE, region, np.zeros((90, 160), bool))
    assert not still.accepted and still.reason == "not moving" and still.moving_share == 0.0


def test_the_sample_sign_camera_makes_plate_rows_only_without_the_gate() -> None:
    """The real reader on the sign camera's wall (citywatch/sample/signs.py), six sampled
    frames through the motion gate: without the plate gate its signs become plate passes
    (WHGOV, OPEN, SUNTRUP, QZ01); with it none, each refused line counted."""
    from citywatch.models.plate_reader import load_plate_reader
    from citywatch.sample.cameras import SITES
    from citywatch.sample.signs import SIGN_CAMERA, SIGNS, sign_sprites
    from citywatch.tasks.index.decode import MotionGate
    from citywatch.tasks.index.plates import SegmentPlates

    settings = Settings()
    site = next(s for s in SITES if s.camera_id == SIGN_CAMERA)
    background = site.open_background((1280, 720))
    reader = load_plate_reader(settings.plates.min_confidence, settings.plates.detect_side_px)
    found = {}
    for enabled in (False, True):
        plates = SegmentPlates(
            reader, settings.plates.model_copy(update={"gate_enabled": enabled}), settings.tracking
        )
        gate = MotionGate(settings.decode.motion_pixel_delta, settings.decode.motion_min_fraction)
        rng = np.random.default_rng(0)
        for n in range(6):
            frame = background.frame_at(n * 0.5)
            for sprite in sign_sprites(SIGN_CAMERA, (1280, 720)):
                sprite.draw(frame, n * 0.5)
            frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
            if gate.moving(frame):
                plates.add_frame(n * 0.5, frame, gate.regions, gate.mask)
        found[enabled] = ({p.text for p in plates.passes()}, plates.rejected_text)
    assert found[False][0] == {s.text for s in SIGNS} and found[False][1] == 0
    assert found[True][0] == set() and found[True][1] >= len(SIGNS)


def test_a_small_line_under_a_taller_one_is_its_caption() -> None:
    """A dealer frame's name (or a state name, a slogan) right under the plate's text."""
    frame, box = _car_with_plate()
    x1, y1, x2, y2 = box
    h = y2 - y1
    caption = (x1 + 10, y2 + 0.3 * h, x2 - 10, y2 + 0.9 * h)
    region = [(100, 50, 560, 400)]
    plate = plate_gate(frame, box, "AB1234", GRAMMAR, RULE, region, None, [box, caption])
    assert plate.accepted and not plate.caption
    under = plate_gate(frame, caption, "SPORT", GRAMMAR, RULE, region, None, [box, caption])
    assert under.caption and not under.accepted
