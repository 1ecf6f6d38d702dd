"""Optional face backend: an operator's insightface model pack (SCRFD + ArcFace).

A pack is a directory of ONNX files such as ``buffalo_l`` (``det_10g.onnx``,
``w600k_r50.onnx``, plus landmark and attribute models we do not use). Files are
told apart the way ``insightface.model_zoo``'s router does it, from each graph's
inputs and outputs: 5 or more outputs is an SCRFD detector; a square input of
112 px or more (not 128 with two inputs, 192 or 96) is an ArcFace recognizer.
Exactly one of each must be present. Nothing is downloaded.

``insightface`` is imported inside functions only, so the default backend never
loads it. ArcFace vectors are L2-normalised; ``default_threshold`` 1.1 on their L2
distance equals cosine similarity 0.395. It comes from published ArcFace operating
points, not from citywatch data: calibrate it on local footage before use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from citywatch.errors import BadInputError
from citywatch.models.base import FaceDetection, check_bgr_image, check_detector_settings, check_faces

ARCFACE_DEFAULT_THRESHOLD = 1.1
_PACK_HINT = (
    "an insightface model pack directory (e.g. buffalo_l) with one SCRFD detector "
    "(like det_10g.onnx, 9 or 15 outputs) and one ArcFace recognizer "
    "(like w600k_r50.onnx, input 1x3x112x112)"
)
_SIZE_STEP = 32


def find_pack_models(pack_dir: str | Path) -> tuple[Path, Path]:
    """``(detector, recognizer)`` ONNX paths in ``pack_dir``, or BadInputError."""
    folder = Path(pack_dir).expanduser()
    if not folder.is_dir():
        raise BadInputError(f"insightface_dir {str(folder)!r} is not a directory; expected {_PACK_HINT}")
    files = sorted(folder.glob("*.onnx"))
    if not files:
        raise BadInputError(f"insightface_dir {str(folder)!r} has no .onnx files; expected {_PACK_HINT}")
    kinds = {path: _graph_kind(path) for path in files}
    detectors = [p.name for p, kind in kinds.items() if kind == "detection"]
    recognizers = [p.name for p, kind in kinds.items() if kind == "recognition"]
    if len(detectors) != 1 or len(recognizers) != 1:
        raise BadInputError(
            f"insightface_dir {str(folder)!r} must hold exactly one detector and one "
            f"recognizer, found detectors {detectors} and recognizers {recognizers}; "
            f"expected {_PACK_HINT}"
        )
    return folder / detectors[0], folder / recognizers[0]


def _graph_kind(path: Path) -> str:
    """Classify an ONNX file like ``insightface.model_zoo.ModelRouter`` does."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        graph = onnx.load_model(str(path), load_external_data=False).graph
    except (DecodeError, OSError, ValueError) as exc:
        raise BadInputError(f"{path} is not a readable ONNX model: {exc}") from exc
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(graph.output) >= 5:
        return "detection"
    if not inputs:
        return "other"
    shape = inputs[0].type.tensor_type.shape.dim
    dims = [d.dim_value if d.HasField("dim_value") else None for d in shape]
    if len(dims) != 4 or dims[2] is None or dims[2] != dims[3]:
        return "other"
    side = dims[2]
    if side in (192, 96) or (side == 128 and len(inputs) == 2):
        return "other"  # landmark, attribute, swapper
    return "recognition" if side >= 112 and side % 16 == 0 else "other"


def _load_zoo_model(path: Path, expected: str) -> Any:
    """One model through ``insightface.model_zoo.get_model``, CPU, one thread."""
    import insightface
    from insightface.model_zoo import get_model

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = get_model(
        str(path.resolve()),
        providers=["CPUExecutionProvider"],
        sess_options=options,
        static_shape_sessions=False,  # one dynamic session for every frame size
    )
    zoo_classes = {
        "detection": insightface.model_zoo.SCRFD,
        "recognition": insightface.model_zoo.ArcFaceONNX,
    }
    if not isinstance(model, zoo_classes[expected]):
        raise BadInputError(
            f"{path} loads as {type(model).__name__}, expected {zoo_classes[expected].__name__}"
        )
    return model


def _model_version(path: Path) -> str:
    import insightface

    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return f"insightface-{insightface.__version__}-{path.stem}-{digest.hexdigest()[:12]}"


class ScrfdDetector:
    """``FaceDetector`` for an SCRFD model with keypoints (insightface pack)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        det_threshold: float = 0.6,
        max_side: int = 960,
        min_face_px: int = 24,
    ) -> None:
        check_detector_settings(det_threshold, max_side, min_face_px)
        self.model_path = Path(model_path)
        self.det_threshold = det_threshold
        self.max_side = max_side
        self.min_face_px = min_face_px
        self._model = _load_zoo_model(self.model_path, "detection")
        if not self._model.use_kps:
            raise BadInputError(
                f"{self.model_path} is an SCRFD model without keypoints (6 or 10 outputs); "
                "alignment needs the 5 landmarks of a 9 or 15 output model"
            )
        self.name = f"scrfd-{self.model_path.stem}"
        self.version = _model_version(self.model_path)

    def __reduce__(self) -> tuple[object, ...]:
        settings = (self.det_threshold, self.max_side, self.min_face_px)
        return (_rebuild_scrfd, (str(self.model_path), *settings))

    def detect(self, image_bgr: np.ndarray) -> list[FaceDetection]:
        image = check_bgr_image(image_bgr)
        height, width = image.shape[:2]
        boxes, points = self._model.detect(
            image, input_size=self._input_size(height, width), det_thresh=self.det_threshold
        )
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        order = np.argsort(-boxes[:, 4], kind="stable")
        return [
            FaceDetection.from_arrays(boxes[i], boxes[i, 4], points[i])
            for i in order
            if sides[i] >= self.min_face_px
        ]

    def _input_size(self, height: int, width: int) -> tuple[int, int]:
        """Network ``(width, height)``: long side at most ``max_side``, multiples of 32."""
        scale = min(1.0, self.max_side / max(height, width))

        def step(side: int) -> int:
            return max(_SIZE_STEP, -(-round(side * scale) // _SIZE_STEP) * _SIZE_STEP)

        return step(width), step(height)


class ArcFaceEmbedder:
    """``FaceEmbedder`` for an ArcFace recognizer (insightface pack), L2-normalised."""

    default_threshold = ARCFACE_DEFAULT_THRESHOLD

    def __init__(self, model_path: str | Path) -> None:
        self.model_path = Path(model_path)
        self._model = _load_zoo_model(self.model_path, "recognition")
        dim, side = self._model.output_shape[-1], self._model.input_size[0]
        if not isinstance(dim, int):
            raise BadInputError(
                f"{self.model_path} has no fixed embedding size: output shape {self._model.output_shape}"
            )
        if side % 112 and side % 128:
            raise BadInputError(
                f"{self.model_path} takes {side} px faces; ArcFace alignment needs a multiple of 112 or 128"
            )
        self.dim = dim
        self._batched = not isinstance(self._model.input_shape[0], int)
        self.name = f"arcface-{self.model_path.stem}"
        self.version = _model_version(self.model_path)

    def __reduce__(self) -> tuple[object, ...]:
        return (ArcFaceEmbedder, (str(self.model_path),))

    def embed(self, image_bgr: np.ndarray, faces: Sequence[FaceDetection]) -> np.ndarray:
        image = check_bgr_image(image_bgr)
        check_faces(faces, need_landmarks=True)
        if not faces:
            return np.zeros((0, self.dim), dtype=np.float32)
        side = self._model.input_size[0]
        crops = [arcface_crop(image, f.landmarks, side) for f in faces]
        if self._batched:
            vectors = self._model.get_feat(crops)
        else:
            vectors = np.vstack([self._model.get_feat(crop) for crop in crops])
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(faces), self.dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        normalised: np.ndarray = matrix / np.maximum(norms, 1e-12)
        return normalised


def arcface_crop(image: np.ndarray, landmarks: Sequence[tuple[float, float]], side: int) -> np.ndarray:
    """The aligned ``side`` x ``side`` face ArcFace expects (``face_align.norm_crop``)."""
    return cv2.warpAffine(image, arcface_matrix(landmarks, side), (side, side), borderValue=0.0)


def arcface_matrix(landmarks: Sequence[tuple[float, float]], side: int) -> np.ndarray:
    """2x3 similarity taking 5 landmarks onto ArcFace's template (``estimate_norm``).

    The same least-squares fit (Umeyama) as skimage's ``SimilarityTransform``,
    without insightface's deprecated skimage call, which warns on every use.
    """
    from insightface.utils.face_align import arcface_dst

    if side % 112 == 0:
        dst = arcface_dst.astype(np.float64) * (side / 112.0)
    else:  # 128-px family: template scaled from 128 and shifted 8 px right
        dst = arcface_dst.astype(np.float64) * (side / 128.0) + [8.0 * side / 128.0, 0.0]
    src = np.asarray(landmarks, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.array([1.0, 1.0 if np.linalg.det(u @ vt) > 0 else -1.0])
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / (src_c**2).sum(axis=1).mean())
    return np.hstack((scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]))


def _rebuild_scrfd(path: str, det_threshold: float, max_side: int, min_face_px: int) -> ScrfdDetector:
    return ScrfdDetector(path, det_threshold=det_threshold, max_side=max_side, min_face_px=min_face_px)


def load_insightface_pair(
    pack_dir: str | Path, *, det_threshold: float, max_side: int, min_face_px: int
) -> tuple[ScrfdDetector, ArcFaceEmbedder]:
    """The pack's detector and embedder, ready to use."""
    detector_path, recognizer_path = find_pack_models(pack_dir)
    detector = ScrfdDetector(
        detector_path, det_threshold=det_threshold, max_side=max_side, min_face_px=min_face_px
    )
    return detector, ArcFaceEmbedder(recognizer_path)
