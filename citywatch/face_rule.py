"""When a stored face counts as a match for a probe: one rule for search and the sweep.

A face row carries two vectors: its own embedding and its track's *template* (the
quality-weighted mean of the track's embedded faces, tasks/index/faces.py). A probe is
compared with both:

- **best face**: the smallest distance over the track's faces (one lucky frame can
  look like anyone, above all when the face is small and the frame noisy);
- **template**: the distance to the track's template (noise averages out).

With ``faces.match_template`` on (the default) a track matches only when *both* are
within the threshold, and the distance reported is the larger: on the small-face
benchmark (benchmarks/faces.py) every false match the best frame alone made had a
template above the threshold, and no genuine match was lost at 56 px and up.

Faces smaller than ``faces.match_min_px`` (the smaller side of the face box, in frame
pixels) are indexed (counts, co-appearance, analytics) but never reported as a match:
below ~40 px the benchmark found no one and its only false match was a 32 px face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class FaceRule:
    min_px: float  # smallest face (px, smaller side of its box) that may match
    use_template: bool  # the track's template must be within the threshold too

    def accepts_size(self, face_px: float) -> bool:
        return face_px >= self.min_px

    def distance(self, best: float, template: float) -> float:
        """The distance a decision is taken on (and reported): see the module doc."""
        return max(best, template) if self.use_template else best


def l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))
