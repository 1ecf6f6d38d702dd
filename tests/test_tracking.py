"""Tracker: one track per face moving across sampled frames."""

from citywatch.geometry import iou
from citywatch.tasks.index.tracking import Tracker


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_two_walkers_keep_their_tracks() -> None:
    tracker: Tracker[str] = Tracker(min_affinity=0.3, max_gap_s=2.0)
    for step in range(6):
        t = step * 0.5
        a = (100 + 30 * step, 100, 140 + 30 * step, 140)  # small face moving fast right
        b = (900 - 10 * step, 300, 1000 - 10 * step, 400)  # large face moving slowly left
        tracker.update(t, [(a, "a"), (b, "b")])
    assert len(tracker.tracks) == 2
    assert {tuple(set(tr.items)) for tr in tracker.tracks} == {("a",), ("b",)}


def test_gap_longer_than_limit_starts_a_new_track() -> None:
    tracker: Tracker[str] = Tracker(min_affinity=0.3, max_gap_s=1.0)
    tracker.update(0.0, [((0, 0, 50, 50), "x")])
    tracker.update(5.0, [((0, 0, 50, 50), "x")])
    assert len(tracker.tracks) == 2


def test_small_fast_walker_is_one_track_at_2fps() -> None:
    """A 42 px face moving ~45 px per half second (a walker seen sideways)."""
    tracker: Tracker[int] = Tracker(min_affinity=0.3, max_gap_s=2.0)
    for step in range(20):
        x = 166 + 45 * step
        tracker.update(step * 0.5, [((x, 218, x + 42, 268), step)])
    assert len(tracker.tracks) == 1


def test_crossing_walkers_are_not_swapped() -> None:
    tracker: Tracker[str] = Tracker(min_affinity=0.3, max_gap_s=2.0)
    for step in range(10):
        a = (100 + 40 * step, 300, 150 + 40 * step, 350)
        b = (500 - 40 * step, 330, 550 - 40 * step, 380)
        tracker.update(step * 0.5, [(a, "a"), (b, "b")])
    assert sorted(set(tr.items) == {"a"} or set(tr.items) == {"b"} for tr in tracker.tracks) == [True, True]


def _face(track: int, start: float, end: float, vec: list[float], quality: float = 0.5):  # noqa: ANN202
    import numpy as np

    from citywatch.models.base import FaceDetection
    from citywatch.tasks.index.faces import EmbeddedFace, FaceCandidate

    det = FaceDetection((0, 0, 10, 10), 0.9, ())
    cand = FaceCandidate(start, (0, 0, 10, 10), 0.9, quality, np.zeros((4, 4, 3), np.uint8), det)
    return EmbeddedFace(cand, track, start, end, np.asarray(vec, np.float32), b"")


def test_lost_and_found_face_becomes_one_track() -> None:
    from citywatch.tasks.index.faces import link_tracks

    faces = [
        _face(0, 0.0, 1.0, [0, 0]),
        _face(1, 2.0, 3.0, [0.1, 0]),  # same person, gap 1 s
        _face(2, 3.5, 4.0, [5, 5]),  # someone else
        _face(3, 20.0, 21.0, [0, 0.05]),
    ]  # same look, much later
    linked = link_tracks(faces, max_gap_s=4.0, max_distance=0.4, keep=3)
    tracks = {f.candidate.offset_s: f.track_index for f in linked}
    assert tracks[0.0] == tracks[2.0]
    assert len({tracks[0.0], tracks[3.5], tracks[20.0]}) == 3
    merged = [f for f in linked if f.track_index == tracks[0.0]]
    assert {(f.track_start_s, f.track_end_s) for f in merged} == {(0.0, 3.0)}


def test_moving_regions_are_merged_before_plate_reading() -> None:
    from citywatch.tasks.index.plates import merge_regions

    # two overlapping blobs become one box; a far one stays; small ones grow to >= 96 px
    boxes = merge_regions([(100, 100, 200, 150), (180, 120, 300, 200), (900, 500, 910, 510)], 1280, 720)
    assert len(boxes) == 2
    assert boxes[0][0] <= 100 and boxes[0][2] >= 300
    far = boxes[1]
    assert far[2] - far[0] >= 96 and far[3] - far[1] >= 96
    # regions covering most of the frame: read the whole frame once
    assert merge_regions([(0, 0, 1000, 600), (1100, 600, 1200, 700)], 1280, 720) == [(0, 0, 1280, 720)]


def test_full_frame_is_read_when_upscaled_regions_would_cost_more() -> None:
    from citywatch.tasks.index.plates import detect_cost, merge_regions

    assert detect_cost((0, 0, 120, 100), 480) == 120 * 100 * 16  # 4x upscale (the cap)
    assert detect_cost((0, 0, 960, 540), 480) == 960 * 540  # large regions are not upscaled
    # one region over half the frame: cheaper than the whole frame, read on its own
    one = merge_regions([(100, 100, 1000, 660)], 1280, 720, 1.0, 480)
    assert one != [(0, 0, 1280, 720)] and len(one) == 1
    # many small ones, each upscaled to 480 px: the whole frame once is cheaper
    small = [(x, y, x + 150, y + 180) for x in (0, 300, 600, 900) for y in (0, 400)]
    assert merge_regions(small, 1280, 720, 1.0, 480) == [(0, 0, 1280, 720)]


def test_tall_and_tiny_moving_regions_are_not_read_for_plates() -> None:
    from citywatch.tasks.index.plates import plate_sized

    car, walker, speck = (100, 300, 420, 560), (600, 200, 700, 500), (900, 500, 950, 540)
    assert plate_sized([car, walker, speck], min_px=96, max_aspect=1.6) == [car]
    assert plate_sized([car, walker], min_px=0, max_aspect=0) == [car, walker]


class _Reader:
    """A plate reader stub: one confident read of the plate wherever it is in the region."""

    target_side_px, max_upscale = 480, 4.0

    def __init__(self) -> None:
        self.plate = (0.0, 0.0, 0.0, 0.0)
        self.calls = 0

    def read(self, image, region):  # noqa: ANN001, ANN201
        from citywatch.models.plate_reader import PlateRead

        self.calls += 1
        x1, y1, x2, y2 = self.plate
        if region[0] <= x1 and region[1] <= y1 and x2 <= region[2] and y2 <= region[3]:
            return [PlateRead("AB1234", 0.97, (0.97,) * 6, self.plate)]
        return []


def test_a_settled_plate_is_reread_at_a_lower_rate_and_stays_one_pass() -> None:
    import numpy as np

    from citywatch.settings import PlatesSettings, TrackingSettings
    from citywatch.tasks.index.plates import SegmentPlates

    image = np.zeros((720, 1280, 3), np.uint8)

    def run(reread_s: float) -> tuple[int, list]:  # noqa: ANN001
        reader = _Reader()
        plates = SegmentPlates(
            reader,
            PlatesSettings(
                low_confidence=0.8,
                settled_confidence=0.9,
                settled_reread_s=reread_s,
                region_min_px=0,
                region_max_aspect=0.0,
                full_frame_share=1.0,
                gate_enabled=False,  # the stub's plate is on a black image: no plate gate here
                text_gate_contrast=0,  # nor text gate
            ),
            TrackingSettings(iou=0.3, max_gap_s=2.0),
        )
        for n in range(12):  # a car crossing at 40 px per sample
            t, x = n * 0.5, 100 + 40 * n
            reader.plate = (x + 100.0, 400.0, x + 200.0, 430.0)
            plates.add_frame(t, image, [(x, 300, x + 300, 560)])
        return reader.calls, plates.passes()

    every, passes = run(0.0)
    fewer, settled = run(1.6)
    assert every == 12 and fewer <= 6
    assert [(p.text, p.low_confidence) for p in passes] == [("AB1234", False)]
    assert [(p.text, p.low_confidence) for p in settled] == [("AB1234", False)]
    assert settled[0].last_s >= 5.0  # still followed to the end


def _crossing(follow_s: float, *, stops_at: int = 99, second_from: int = 99) -> tuple[_Reader, list]:
    """A car crossing at 40 px per sample (2 fps) read by the stub; it stops moving (no
    region) from sample ``stops_at``; a second car (another plate) enters the first's
    region from sample ``second_from``. Returns the reader and the passes."""
    import numpy as np

    from citywatch.settings import PlatesSettings, TrackingSettings
    from citywatch.tasks.index.plates import SegmentPlates

    image = np.zeros((720, 1280, 3), np.uint8)
    reader = _TwoPlateReader()
    plates = SegmentPlates(
        reader,  # type: ignore[arg-type]
        PlatesSettings(
            settled_confidence=0.9,
            settled_reread_s=1.6,
            settled_follow_s=follow_s,
            region_min_px=0,
            region_max_aspect=0.0,
            full_frame_share=1.0,
            gate_enabled=False,  # the stub's plates are on a black image
            text_gate_contrast=0,
        ),
        TrackingSettings(iou=0.3, max_gap_s=2.0),
    )
    for n in range(16):
        t, x = n * 0.5, 100 + 40 * n
        reader.plates = [("AB1234", (x + 100.0, 400.0, x + 200.0, 430.0))]
        if n >= second_from:
            reader.plates.append(("CD5678", (x + 300.0, 420.0, x + 400.0, 450.0)))
        regions = [(x, 300, x + 520, 560)] if n < stops_at else []
        plates.add_frame(t, image, regions)
    return reader, plates.passes()


class _TwoPlateReader(_Reader):
    """One confident read of each plate wholly inside the region."""

    def __init__(self) -> None:
        super().__init__()
        self.plates: list[tuple[str, tuple[float, float, float, float]]] = []

    def read(self, image, region):  # noqa: ANN001, ANN201
        from citywatch.models.plate_reader import PlateRead

        self.calls += 1
        return [
            PlateRead(text, 0.97, (0.97,) * 6, box)
            for text, box in self.plates
            if region[0] <= box[0] and region[1] <= box[1] and box[2] <= region[2] and box[3] <= region[3]
        ]


def test_a_followed_settled_plate_is_read_less_and_keeps_its_whole_pass() -> None:
    """plates.settled_follow_s: the settled plate is followed instead of re-read every
    1.6 s: fewer reads, still one pass, not low-confidence, spanning the whole crossing."""
    rereading, before = _crossing(0.0)
    following, after = _crossing(3.6)
    assert following.calls < rereading.calls
    assert following.calls <= 5  # 2 to settle, then one every ~3.6 s of 7.5 s
    for passes in (before, after):
        assert [(p.text, p.low_confidence) for p in passes] == [("AB1234", False)]
    assert after[0].first_s == 0.0 and after[0].last_s == 7.5


def test_a_followed_plate_ends_where_its_vehicle_stops_moving() -> None:
    """No moving region holds it from 3.0 s: the pass ends at the last frame it moved."""
    _, passes = _crossing(3.6, stops_at=7)
    assert [(p.text, p.first_s, p.last_s) for p in passes] == [("AB1234", 0.0, 3.0)]


def test_a_new_plate_beside_a_followed_one_is_still_read() -> None:
    """A second car enters the settled car's region at 2.5 s: it is read at the next
    re-read (within settled_follow_s), both passes kept, each its own track."""
    _, passes = _crossing(3.6, second_from=5)
    assert sorted(p.text for p in passes) == ["AB1234", "CD5678"]
    second = next(p for p in passes if p.text == "CD5678")
    assert second.first_s <= 2.5 + 3.6 and not second.low_confidence
