"""plates.first_frame_waits (tasks/index/plate_frames.py): the first frame of a segment is
read only once the next frame's motion mask shows what moved, inside its regions."""

from __future__ import annotations

import numpy as np

from citywatch.tasks.index.plate_frames import PlateFrames

IMAGE = np.zeros((72, 128, 3), np.uint8)
WHOLE = [(0, 0, 128, 72)]
CAR = [(10, 20, 60, 50)]
MASK = np.zeros((9, 16), bool)


def test_the_first_frame_is_read_with_the_next_frames_regions_and_mask() -> None:
    frames = PlateFrames(first_frame_waits=True)
    assert frames.moving(0.0, IMAGE, WHOLE, None) == []  # waits: no mask yet
    first, second = frames.moving(0.5, IMAGE, CAR, MASK)
    assert (first.offset_s, first.regions, first.motion is MASK) == (0.0, CAR, True)
    assert (second.offset_s, second.regions, second.motion is MASK) == (0.5, CAR, True)
    assert frames.moving(1.0, IMAGE, CAR, MASK)[0].offset_s == 1.0
    assert frames.end() == []


def test_a_first_frame_followed_by_stillness_is_not_read() -> None:
    frames = PlateFrames(first_frame_waits=True)
    frames.moving(0.0, IMAGE, WHOLE, None)
    frames.still()  # nothing moved between the first and the next sampled frame
    assert [f.offset_s for f in frames.moving(1.0, IMAGE, CAR, MASK)] == [1.0]


def test_a_segment_of_one_frame_still_reads_it_and_the_setting_off_reads_at_once() -> None:
    alone = PlateFrames(first_frame_waits=True)
    alone.moving(0.0, IMAGE, WHOLE, None)
    (only,) = alone.end()
    assert (only.offset_s, only.regions, only.motion) == (0.0, WHOLE, None)
    off = PlateFrames(first_frame_waits=False)
    (now,) = off.moving(0.0, IMAGE, WHOLE, None)
    assert (now.regions, now.motion) == (WHOLE, None)
