"""Tracker: one track per face moving across sampled frames."""

from tasks.tracking import Tracker, iou


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_two_walkers_keep_their_tracks() -> None:
    tracker: Tracker[str] = Tracker(min_affinity=0.3, max_gap_s=2.0)
    for step in range(6):
        t = step * 0.5
        a = (100 + 30 * step, 100, 140 + 30 * step, 140)   # small face moving fast right
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

    from models.base import FaceDetection
    from tasks.faces import EmbeddedFace, FaceCandidate

    det = FaceDetection((0, 0, 10, 10), 0.9, ())
    cand = FaceCandidate(start, (0, 0, 10, 10), 0.9, quality, np.zeros((4, 4, 3), np.uint8), det)
    return EmbeddedFace(cand, track, start, end, np.asarray(vec, np.float32), b"")


def test_lost_and_found_face_becomes_one_track() -> None:
    from tasks.faces import link_tracks

    faces = [_face(0, 0.0, 1.0, [0, 0]), _face(1, 2.0, 3.0, [0.1, 0]),   # same person, gap 1 s
             _face(2, 3.5, 4.0, [5, 5]),                                   # someone else
             _face(3, 20.0, 21.0, [0, 0.05])]                              # same look, much later
    linked = link_tracks(faces, max_gap_s=4.0, max_distance=0.4, keep=3)
    tracks = {f.candidate.offset_s: f.track_index for f in linked}
    assert tracks[0.0] == tracks[2.0]
    assert len({tracks[0.0], tracks[3.5], tracks[20.0]}) == 3
    merged = [f for f in linked if f.track_index == tracks[0.0]]
    assert {(f.track_start_s, f.track_end_s) for f in merged} == {(0.0, 3.0)}


def test_moving_regions_are_merged_before_plate_reading() -> None:
    from tasks.plates import merge_regions

    # two overlapping blobs become one box; a far one stays; small ones grow to >= 96 px
    boxes = merge_regions([(100, 100, 200, 150), (180, 120, 300, 200), (900, 500, 910, 510)],
                          1280, 720)
    assert len(boxes) == 2
    assert boxes[0][0] <= 100 and boxes[0][2] >= 300
    far = boxes[1]
    assert far[2] - far[0] >= 96 and far[3] - far[1] >= 96
    # regions covering most of the frame: read the whole frame once
    assert merge_regions([(0, 0, 1000, 600), (1100, 600, 1200, 700)], 1280, 720) == [(0, 0, 1280, 720)]
