"""Where indexing spends its CPU: seconds per stage of one segment, summed per run.

CPU time of the indexing thread (``time.thread_time``): onnxruntime runs with one
intra-op thread in the calling thread, dlib runs in it too, so a stage's figure is its
real cost and holds on a busy machine (wall time does not). The stages:

- ``decode``: demuxing and decoding the sampled frames (``sample_frames`` less the gate)
- ``gate``: the motion gate (a small grey copy, differencing, moving regions)
- ``face_detect``: face detection, tracking and quality on moving frames (privacy masks included)
- ``embed``: face embeddings of each track's best faces
- ``plate_detect`` / ``plate_read``: PP-OCR text detection / recognition (and the small-plate reader)
- ``plate_other``: the plate branch's own work around them (regions, voting, crops)
- ``write``: thumbnails, rows and the segment record to storage
- ``other``: the rest (hashing the file, locating the camera, leases)
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, fields

STAGES = (
    "decode",
    "gate",
    "face_detect",
    "embed",
    "plate_detect",
    "plate_read",
    "plate_other",
    "write",
    "other",
)


@dataclass
class StageCpu:
    """CPU seconds per stage (see the module docstring); ``total`` is their sum."""

    decode: float = 0.0
    gate: float = 0.0
    face_detect: float = 0.0
    embed: float = 0.0
    plate_detect: float = 0.0
    plate_read: float = 0.0
    plate_other: float = 0.0
    write: float = 0.0
    other: float = 0.0

    @property
    def total(self) -> float:
        return sum(getattr(self, name) for name in STAGES)

    def add(self, other: StageCpu) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def per_footage_hour(self, footage_s: float) -> dict[str, float]:
        """CPU seconds per hour of footage, per stage and ``total``."""
        scale = 3600.0 / footage_s if footage_s > 0 else 0.0
        out = {name: getattr(self, name) * scale for name in STAGES}
        out["total"] = self.total * scale
        return out


class StageClock:
    """Splits one thread's CPU time into stages: ``lap(stage)`` charges the time since
    the previous lap to ``stage``; ``charge(stage, s)`` moves ``s`` seconds measured
    inside a lap (e.g. by the plate reader's own counters) from it to another stage."""

    def __init__(self) -> None:
        self.cpu = StageCpu()
        self._last = time.thread_time()

    def lap(self, stage: str) -> None:
        now = time.thread_time()
        setattr(self.cpu, stage, getattr(self.cpu, stage) + now - self._last)
        self._last = now

    def charge(self, from_stage: str, to_stage: str, seconds: float) -> None:
        setattr(self.cpu, from_stage, getattr(self.cpu, from_stage) - seconds)
        setattr(self.cpu, to_stage, getattr(self.cpu, to_stage) + seconds)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
