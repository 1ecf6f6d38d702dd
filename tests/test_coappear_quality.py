"""Grouping quality on degraded views of real faces: BCubed precision and recall >= 0.95.

Every face of the sample's real photos (obama x3, biden, the six people of t1.jpg, the
astronaut, Tom Hanks) is cut out and degraded the way CCTV degrades it (small and
upscaled, blurred, heavily JPEG-compressed, darkened, mirrored), embedded with the real
face model, and the views are grouped at the default threshold, as recurring faces are.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.models.loaders import face_model_for
from citywatch.sample.faces import read_source
from citywatch.sample.media import fetch_media
from tests.conftest import settings_for

PHOTOS = {"obama": ["obama.jpg", "obama2.jpg", "obama3.jpg"], "biden": ["biden.jpg"]}
GROUP_PHOTOS = ["t1.jpg", "skimage:astronaut", "Tom_Hanks_54745.png"]  # each face its own person


def degrade(crop: np.ndarray) -> list[np.ndarray]:
    h, w = crop.shape[:2]
    small = cv2.resize(cv2.resize(crop, (max(8, w // 3), max(8, h // 3))), (w, h))
    blurred = cv2.GaussianBlur(crop, (0, 0), 1.6)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 25])
    jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else crop
    dark = (crop.astype(np.float32) * 0.55).astype(np.uint8)
    return [crop, small, blurred, jpeg, dark, cv2.flip(crop, 1)]


def views(tmp: Path) -> tuple[list[np.ndarray], list[str]]:
    model = face_model_for(settings_for(tmp / "data", tmp))
    media = fetch_media()
    vectors: list[np.ndarray] = []
    labels: list[str] = []
    sources = [(person, photo) for person, photos in PHOTOS.items() for photo in photos]
    for photo in GROUP_PHOTOS:
        sources.append(("", photo))
    for person, photo in sources:
        image = read_source(photo, media)
        for index, face in enumerate(sorted(model.detector.detect(image), key=lambda f: f.bbox[0])):
            x1, y1, x2, y2 = (int(v) for v in face.bbox)
            mw, mh = (x2 - x1) // 2, (y2 - y1) // 2
            crop = image[max(0, y1 - mh) : y2 + mh, max(0, x1 - mw) : x2 + mw]
            who = person or f"{photo}#{index}"
            for view in degrade(np.ascontiguousarray(crop)):
                found = model.detector.detect(view)
                if len(found) == 1:
                    vectors.append(model.embedder.embed(view, found)[0].astype(np.float32))
                    labels.append(who)
    return vectors, labels


def test_bcubed_on_degraded_real_faces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from citywatch.tasks.search.grouping import group_labels
    from tests.test_coappear import bcubed

    vectors, labels = views(tmp_path)
    assert len(set(labels)) >= 10 and len(vectors) >= 50
    pred = group_labels(np.stack(vectors), 0.55).tolist()
    items = [str(i) for i in range(len(vectors))]
    groups: dict[int, list[str]] = {}
    for item, label in zip(items, pred):
        groups.setdefault(label, []).append(item)
    precision, recall = bcubed(list(groups.values()), dict(zip(items, labels)))
    with capsys.disabled():
        print(
            f"\nBCubed on {len(vectors)} degraded views of {len(set(labels))} people: "
            f"precision {precision:.3f} recall {recall:.3f}"
        )
    assert precision >= 0.95 and recall >= 0.95
