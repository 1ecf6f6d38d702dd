"""Which moving frames the plate branch reads, with which regions and motion mask.

A segment's first sampled frame has no motion mask yet (the motion gate calls the whole
frame moving), so the plate gate could not tell a shop sign or a parked car from a
passing plate there. With ``plates.first_frame_waits`` the first frame waits for the
next one: the difference of the two frames shows what moved in both, so the first frame
is read inside the next frame's moving regions, under its mask. If the next sampled
frame shows no motion, nothing in the first frame moved and it is not read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Region = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class PlateFrame:
    offset_s: float
    image: np.ndarray
    regions: list[Region]
    motion: np.ndarray | None  # the motion gate's mask; None: none known


class PlateFrames:
    """Feed every moving frame in order; read the frames it hands back, in that order."""

    def __init__(self, first_frame_waits: bool) -> None:
        self.first_frame_waits = first_frame_waits
        self._held: PlateFrame | None = None

    def moving(
        self, offset_s: float, image: np.ndarray, regions: list[Region], motion: np.ndarray | None
    ) -> list[PlateFrame]:
        frame = PlateFrame(offset_s, image, list(regions), motion)
        if motion is None and self.first_frame_waits:
            self._held = frame
            return []
        held, self._held = self._held, None
        if held is None:
            return [frame]
        return [PlateFrame(held.offset_s, held.image, frame.regions, motion), frame]

    def still(self) -> None:
        """A sampled frame with no motion: the held first frame's content did not move."""
        self._held = None

    def end(self) -> list[PlateFrame]:
        """At the segment's end: a first frame that never saw a next one, read as it is."""
        held, self._held = self._held, None
        return [held] if held is not None else []
