"""Fixtures shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

STREET = Path("/usr/share/doc/opencv-doc/examples/data/building.jpg")


@pytest.fixture(scope="module")
def street() -> np.ndarray:
    frame = cv2.imread(str(STREET))
    if frame is None:
        pytest.skip(f"{STREET} missing (Debian opencv-doc)")
    return cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_AREA)
