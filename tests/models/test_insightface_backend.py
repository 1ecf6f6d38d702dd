"""insightface backend, loaded through insightface's own model_zoo.

No real model pack can be downloaded here, so the tests build tiny ONNX graphs
with the inputs and outputs insightface routes on:

- detector: SCRFD layout, dynamic 1x3xHxW input, 9 outputs (scores, boxes and
  keypoints for strides 8/16/32, 2 anchors per cell). Only the stride-32 score
  looks at the image: it is high where a 32x32 cell is white. Box distances are
  one stride on every side and keypoints sit at fixed offsets, so a white cell
  at column j, row i gives the box (32j-32, 32i-32, 32j+32, 32i+32).
- recognizer: ArcFace layout, Nx3x112x112 -> Nx512, always the same vector.
- a 192x192 landmark graph, which buffalo_l also carries and the backend skips.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from citywatch.errors import BadInputError
from citywatch.models.base import FaceDetection, FaceModel
from citywatch.models.faces import load_face_model
from citywatch.models.insightface_backend import arcface_crop, arcface_matrix

onnx = pytest.importorskip("onnx")
pytest.importorskip("insightface")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

STRIDES = (8, 16, 32)
KPS_OFFSETS = np.array([-0.3, -0.2, 0.3, -0.2, 0.0, 0.1, -0.25, 0.4, 0.25, 0.4], np.float32)
FIXED_VECTOR = np.random.default_rng(7).normal(size=512).astype(np.float32)


def _conv_head(name: str, stride: int, channels: int, weight: float, bias: np.ndarray) -> tuple[list, list]:
    """Conv(kernel=stride=stride) -> NHWC -> (cells * anchors, channels / 2) nodes."""
    w = np.full((channels, 3, stride, stride), weight / (3 * stride * stride), np.float32)
    inits = [
        numpy_helper.from_array(w, f"{name}_w"),
        numpy_helper.from_array(bias.astype(np.float32), f"{name}_b"),
        numpy_helper.from_array(np.array([-1, channels // 2], np.int64), f"{name}_shape"),
    ]
    nodes = [
        helper.make_node(
            "Conv",
            ["input.1", f"{name}_w", f"{name}_b"],
            [f"{name}_conv"],
            kernel_shape=[stride, stride],
            strides=[stride, stride],
            name=f"conv_{name}",
        ),
    ]
    last = f"{name}_conv"
    if name.startswith("score"):
        nodes.append(helper.make_node("Sigmoid", [last], [f"{name}_sig"], name=f"sig_{name}"))
        last = f"{name}_sig"
    nodes += [
        helper.make_node("Transpose", [last], [f"{name}_nhwc"], perm=[0, 2, 3, 1], name=f"tr_{name}"),
        helper.make_node("Reshape", [f"{name}_nhwc", f"{name}_shape"], [name], name=f"rs_{name}"),
    ]
    return nodes, inits


def make_scrfd(path: Path) -> None:
    nodes, inits, outputs = [], [], []
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in STRIDES:
            if kind == "score":
                weight, bias = (10.0, np.zeros(2)) if stride == 32 else (0.0, np.full(2, -10.0))
            elif kind == "bbox":
                weight, bias = 0.0, np.ones(8)
            else:
                weight, bias = 0.0, np.tile(KPS_OFFSETS, 2)
            n, i = _conv_head(f"{kind}{stride}", stride, 2 * width, weight, bias)
            nodes += n
            inits += i
            outputs.append(
                helper.make_tensor_value_info(
                    f"{kind}{stride}", TensorProto.FLOAT, [f"n{kind}{stride}", width]
                )
            )
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])
    graph = helper.make_graph(nodes, "scrfd_test", [image], outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def make_arcface(path: Path, side: int = 112, batch: int | str = "batch") -> None:
    inits = [
        numpy_helper.from_array(np.zeros((3, 512), np.float32), "fc_w"),
        numpy_helper.from_array(FIXED_VECTOR, "fc_b"),
    ]
    nodes = [
        helper.make_node("GlobalAveragePool", ["input.1"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1, name="flatten"),
        helper.make_node("MatMul", ["flat", "fc_w"], ["fc"], name="fc"),
        helper.make_node("Add", ["fc", "fc_b"], ["embedding"], name="bias"),
    ]
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, side, side])
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 512])
    graph = helper.make_graph(nodes, "arcface_test", [image], [out], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("buffalo_test")
    make_scrfd(folder / "det_test.onnx")
    make_arcface(folder / "rec_test.onnx")
    make_arcface(folder / "2d106det.onnx", side=192)
    return folder


@pytest.fixture(scope="module")
def model(pack: Path) -> FaceModel:
    return load_face_model("insightface", insightface_dir=str(pack), min_face_px=24)


def white_cell(height: int, width: int, row: int, col: int) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[row * 32 : (row + 1) * 32, col * 32 : (col + 1) * 32] = 255
    return image


def test_pack_loads_through_model_zoo(model: FaceModel, pack: Path) -> None:
    import insightface

    assert isinstance(model.detector._model, insightface.model_zoo.SCRFD)  # type: ignore[attr-defined]
    assert isinstance(model.embedder._model, insightface.model_zoo.ArcFaceONNX)  # type: ignore[attr-defined]
    assert model.name == "scrfd-det_test+arcface-rec_test"
    assert "det_test" in model.version and "rec_test" in model.version
    assert model.embedder.dim == 512
    assert model.embedder.default_threshold == pytest.approx(1.1)
    assert load_face_model("insightface", insightface_dir=str(pack)) is model
    for zoo_model in (model.detector._model, model.embedder._model):  # type: ignore[attr-defined]
        assert zoo_model.session.get_providers() == ["CPUExecutionProvider"]
        assert zoo_model.session.get_session_options().intra_op_num_threads == 1


@pytest.mark.parametrize(
    ("shape", "row", "col"),
    [((640, 640), 10, 6), ((320, 480), 4, 9)],
)
def test_detect_finds_the_white_cell(model: FaceModel, shape: tuple[int, int], row: int, col: int) -> None:
    faces = model.detector.detect(white_cell(*shape, row, col))
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, FaceDetection) and face.score > 0.99
    cx, cy = col * 32, row * 32
    assert np.allclose(face.bbox, (cx - 32, cy - 32, cx + 32, cy + 32), atol=0.5)
    expected = [(cx + 32 * dx, cy + 32 * dy) for dx, dy in KPS_OFFSETS.reshape(5, 2)]
    assert np.allclose(face.landmarks, expected, atol=0.5)


def test_detect_blank_frame_finds_nothing(model: FaceModel) -> None:
    assert model.detector.detect(np.zeros((360, 640, 3), np.uint8)) == []


def test_detect_maps_shrunk_frames_back(pack: Path) -> None:
    """A 1920 px frame is run at 960 px; boxes come back in 1920 px coordinates."""
    detector = load_face_model("insightface", insightface_dir=str(pack), max_side=960).detector
    big = np.zeros((1088, 1920, 3), np.uint8)
    big[4 * 64 : 5 * 64, 10 * 64 : 11 * 64] = 255  # one 32 px cell after halving
    faces = detector.detect(big)
    assert len(faces) == 1
    assert np.allclose(faces[0].bbox, (640 - 64, 256 - 64, 640 + 64, 256 + 64), atol=1.0)


def test_embed_returns_normalised_fixed_vector(model: FaceModel) -> None:
    image = white_cell(640, 640, 10, 6)
    faces = model.detector.detect(image)
    vectors = model.embedder.embed(image, faces + faces)
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32
    expected = FIXED_VECTOR / np.linalg.norm(FIXED_VECTOR)
    assert np.allclose(vectors, expected[None], atol=1e-5)
    empty = model.embedder.embed(image, [])
    assert empty.shape == (0, 512) and empty.dtype == np.float32


@pytest.mark.parametrize("side", [112, 128, 224])
def test_arcface_alignment_matches_insightface(side: int) -> None:
    from insightface.utils.face_align import estimate_norm

    rng = np.random.default_rng(side)
    landmarks = np.array([[150, 120], [210, 118], [182, 160], [158, 200], [205, 198]], np.float32)
    landmarks += rng.normal(scale=3, size=landmarks.shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # skimage deprecation inside insightface
        expected = estimate_norm(landmarks, image_size=side)
    ours = arcface_matrix([tuple(p) for p in landmarks], side)
    assert np.allclose(ours, expected, rtol=1e-4, atol=1e-3)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    assert arcface_crop(image, [tuple(p) for p in landmarks], side).shape == (side, side, 3)


def test_embed_with_a_batch_of_one_model(pack: Path, tmp_path: Path) -> None:
    (tmp_path / "det_test.onnx").write_bytes((pack / "det_test.onnx").read_bytes())
    make_arcface(tmp_path / "rec_b1.onnx", batch=1)
    model = load_face_model("insightface", insightface_dir=str(tmp_path))
    image = white_cell(640, 640, 10, 6)
    faces = model.detector.detect(image)
    vectors = model.embedder.embed(image, faces * 3)
    assert vectors.shape == (3, 512)
    assert np.allclose(vectors[0], vectors[2])


def test_embed_needs_five_landmarks(model: FaceModel) -> None:
    face = FaceDetection((0.0, 0.0, 50.0, 50.0), 0.9, ())
    with pytest.raises(BadInputError, match="5 are needed"):
        model.embedder.embed(np.zeros((64, 64, 3), np.uint8), [face])


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ((), r"no \.onnx files"),
        (("rec_test.onnx",), r"found detectors \[\] and recognizers \['rec_test.onnx'\]"),
        (("det_test.onnx",), r"found detectors \['det_test.onnx'\] and recognizers \[\]"),
        (
            ("det_test.onnx", "rec_test.onnx", "rec_copy.onnx"),
            r"recognizers \['rec_copy.onnx', 'rec_test.onnx'\]",
        ),
        (
            ("det_test.onnx", "rec_test.onnx", "notes.onnx"),
            r"notes.onnx is not a readable ONNX model",
        ),
    ],
)
def test_incomplete_packs_are_rejected(
    pack: Path, tmp_path: Path, files: tuple[str, ...], message: str
) -> None:
    for name in files:
        source = pack / ("rec_test.onnx" if name == "rec_copy.onnx" else name)
        target = tmp_path / name
        if name == "notes.onnx":
            target.write_text("not a model")
        else:
            target.write_bytes(source.read_bytes())
    with pytest.raises(BadInputError, match=message):
        load_face_model("insightface", insightface_dir=str(tmp_path))
