"""Match-threshold calibration on labelled local photos: FMR / FNMR per threshold.

A folder holds ``<person>/<photo>`` images (one face each). Every photo is embedded
with the configured face model; every pair of photos is then a *genuine* pair (same
person) or an *impostor* pair (different people). At a threshold ``t`` (a pair
matches when its L2 distance is ``<= t``, as in search):

- FMR(t)  = impostor pairs that match / impostor pairs   (false matches)
- FNMR(t) = genuine pairs that do not match / genuine pairs (missed matches)

The recommendation is the largest threshold on the grid whose FMR is at most the
target. With ``n`` impostor pairs an FMR below ~3/n cannot be shown at 95 %
confidence (rule of three), so the report says when there are too few.

**By face size.** Street cameras see faces far smaller than a photo holds. For each
size in ``sizes`` (the face box's smaller side, in pixels) every photo whose face is
larger is shrunk until its face is that size, found and embedded again, and compared
with every *other* photo at full size (a probe photo against a small face in footage):
the FMR/FNMR at the model default (and at the recommendation) per size, and how many
photos still had a face found. ``faces.match_min_px`` should sit at a size whose rates
are acceptable.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.stats import beta

from citywatch.errors import BadInputError
from citywatch.images import decode_image
from citywatch.models.base import FaceModel
from citywatch.storage import Storage

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
GRID_STEP = 0.01
DEFAULT_SIZES = (40, 56, 80, 120)
MIN_CANVAS = 160  # a shrunk photo is padded to at least this (the detector needs some context)


@dataclass(frozen=True, slots=True)
class SkippedPhoto:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class LabelledPhoto:
    person: str
    source: str  # the key under the calibration folder, e.g. "alice/1.jpg"
    data: bytes


@dataclass(frozen=True, slots=True)
class EmbeddedPhoto:
    person: str
    source: str
    embedding: np.ndarray
    face_px: float = 0.0  # the face box's smaller side in the photo


@dataclass(frozen=True, slots=True)
class SizePoint:
    face_px: int
    photos_shrunk: int  # photos whose face was larger than this size
    photos_found: int  # of those, photos whose face was still found (exactly one face)
    genuine_pairs: int
    impostor_pairs: int
    at_default: RatePoint
    at_recommended: RatePoint | None


@dataclass(frozen=True, slots=True)
class RatePoint:
    threshold: float
    fmr: float
    fnmr: float
    false_matches: int
    false_non_matches: int


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    model: str
    people: int
    photos: int
    skipped: tuple[SkippedPhoto, ...]
    genuine_pairs: int
    impostor_pairs: int
    target_fmr: float
    points: tuple[RatePoint, ...]
    recommended: RatePoint | None  # None: no threshold on the grid meets the target
    recommended_fmr_upper95: float  # one-sided 95 % upper bound of FMR there (1.0 if none)
    impostors_needed: int  # impostor pairs needed to show the target FMR (rule of three)
    enough_impostors: bool
    default_threshold: float
    at_default: RatePoint
    note: str
    by_size: tuple[SizePoint, ...] = ()


def load_labelled_photos(storage: Storage, folder: str) -> tuple[list[LabelledPhoto], list[SkippedPhoto]]:
    """Every ``<person>/<photo>`` image under ``folder``, and the files skipped."""
    location = storage.resolve(folder)
    found: list[LabelledPhoto] = []
    skipped: list[SkippedPhoto] = []
    for obj in storage.list_files(location):
        parts = obj.key.split("/")
        if any(part.startswith(".") for part in parts):
            continue
        if len(parts) != 2:
            skipped.append(SkippedPhoto(obj.key, "not in a person folder (expected <person>/<photo>)"))
        elif posixpath.splitext(obj.key)[1].lower() not in IMAGE_SUFFIXES:
            suffixes = ", ".join(IMAGE_SUFFIXES)
            skipped.append(SkippedPhoto(obj.key, f"not an image file (use {suffixes})"))
        else:
            found.append(LabelledPhoto(parts[0], obj.key, storage.read_bytes(obj.url)))
    return found, skipped


def embed_photos(
    photos: list[LabelledPhoto], model: FaceModel
) -> tuple[list[EmbeddedPhoto], list[SkippedPhoto]]:
    """Embed each photo's one face; photos with no face or several are skipped."""
    embedded: list[EmbeddedPhoto] = []
    skipped: list[SkippedPhoto] = []
    for photo in photos:
        try:
            image = decode_image(photo.data, photo.source)
        except BadInputError as exc:
            skipped.append(SkippedPhoto(photo.source, str(exc)))
            continue
        faces = model.detector.detect(image)
        if len(faces) != 1:
            reason = (
                "no face found"
                if not faces
                else (f"{len(faces)} faces found; calibration needs exactly one face per photo")
            )
            skipped.append(SkippedPhoto(photo.source, reason))
            continue
        vector = model.embedder.embed(image, faces)[0].astype(np.float32)
        x1, y1, x2, y2 = faces[0].bbox
        embedded.append(EmbeddedPhoto(photo.person, photo.source, vector, float(min(x2 - x1, y2 - y1))))
    return embedded, skipped


def shrink(image: np.ndarray, face_px: float, size: int) -> np.ndarray:
    """``image`` scaled so a face of ``face_px`` becomes ``size`` px, padded to ``MIN_CANVAS``."""
    scale = size / face_px
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    pad = max(0, (MIN_CANVAS - min(small.shape[:2]) + 1) // 2)
    return cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else small


def rates_by_size(
    photos: list[LabelledPhoto],
    embedded: list[EmbeddedPhoto],
    model: FaceModel,
    sizes: tuple[int, ...],
    default: float,
    recommended: float | None,
) -> list[SizePoint]:
    """FMR/FNMR per face size: each photo shrunk to the size vs every other photo at full size."""
    data = {p.source: p.data for p in photos}
    full = np.stack([e.embedding for e in embedded]).astype(np.float64) if embedded else np.zeros((0, 0))
    labels = np.array([e.person for e in embedded])
    genuine: dict[int, list[np.ndarray]] = {size: [] for size in sizes}
    impostor: dict[int, list[np.ndarray]] = {size: [] for size in sizes}
    shrunk = dict.fromkeys(sizes, 0)
    found = dict.fromkeys(sizes, 0)
    for i, photo in enumerate(embedded):
        smaller = [size for size in sizes if size < photo.face_px]
        if not smaller:
            continue
        image = decode_image(data[photo.source], photo.source)  # once per photo, for every size
        others = np.arange(len(embedded)) != i
        for size in smaller:
            shrunk[size] += 1
            small = shrink(image, photo.face_px, size)
            faces = model.detector.detect(small)
            if len(faces) != 1:
                continue
            found[size] += 1
            vector = model.embedder.embed(small, faces)[0].astype(np.float64)
            dist = np.sqrt(((full - vector[None, :]) ** 2).sum(axis=1))
            genuine[size].append(dist[others & (labels == photo.person)])
            impostor[size].append(dist[others & (labels != photo.person)])
    out: list[SizePoint] = []
    for size in sizes:
        g = np.concatenate(genuine[size]) if genuine[size] else np.zeros(0)
        im = np.concatenate(impostor[size]) if impostor[size] else np.zeros(0)
        out.append(
            SizePoint(
                face_px=size,
                photos_shrunk=shrunk[size],
                photos_found=found[size],
                genuine_pairs=len(g),
                impostor_pairs=len(im),
                at_default=error_rates(g, im, np.array([default]))[0],
                at_recommended=error_rates(g, im, np.array([recommended]))[0] if recommended else None,
            )
        )
    return out


def pair_distances(photos: list[EmbeddedPhoto]) -> tuple[np.ndarray, np.ndarray]:
    """L2 distances of every genuine pair and every impostor pair."""
    if len(photos) < 2:
        return np.zeros(0), np.zeros(0)
    vectors = np.stack([p.embedding for p in photos]).astype(np.float64)
    labels = np.array([p.person for p in photos])
    upper = np.triu_indices(len(photos), k=1)
    squared = np.sum(vectors**2, axis=1)
    gram = squared[:, None] + squared[None, :] - 2.0 * (vectors @ vectors.T)
    dist = np.sqrt(np.maximum(gram, 0.0))[upper]
    same = (labels[:, None] == labels[None, :])[upper]
    return dist[same], dist[~same]


def error_rates(genuine: np.ndarray, impostor: np.ndarray, thresholds: np.ndarray) -> list[RatePoint]:
    """FMR and FNMR at each threshold (a pair matches when distance <= threshold)."""
    genuine, impostor = np.sort(genuine), np.sort(impostor)
    out = []
    for t in thresholds:
        false_matches = int(np.searchsorted(impostor, t, side="right"))
        false_non = int(len(genuine) - np.searchsorted(genuine, t, side="right"))
        out.append(
            RatePoint(
                threshold=round(float(t), 4),
                fmr=false_matches / len(impostor) if len(impostor) else 0.0,
                fnmr=false_non / len(genuine) if len(genuine) else 0.0,
                false_matches=false_matches,
                false_non_matches=false_non,
            )
        )
    return out


def threshold_grid(genuine: np.ndarray, impostor: np.ndarray, default: float) -> np.ndarray:
    top = max(float(np.max(genuine, initial=0.0)), float(np.max(impostor, initial=0.0)), default)
    steps = int(math.ceil(top / GRID_STEP)) + 1
    return np.round(np.arange(1, steps + 1) * GRID_STEP, 4)


def recommend(points: list[RatePoint], target_fmr: float) -> RatePoint | None:
    """The largest threshold whose FMR is at most ``target_fmr``."""
    meeting = [p for p in points if p.fmr <= target_fmr]
    return max(meeting, key=lambda p: p.threshold) if meeting else None


def fmr_upper95(false_matches: int, impostor_pairs: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound of the false match rate."""
    if impostor_pairs == 0 or false_matches >= impostor_pairs:
        return 1.0
    return float(beta.ppf(0.95, false_matches + 1, impostor_pairs - false_matches))


def calibrate(
    storage: Storage,
    model: FaceModel,
    folder: str,
    target_fmr: float = 0.001,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
) -> CalibrationReport:
    """Embed the labelled photos under ``folder`` and report rates and a threshold
    (overall, and per face size in ``sizes``)."""
    if not 0 < target_fmr < 1:
        raise BadInputError(f"--target-fmr {target_fmr} must be between 0 and 1 (e.g. 0.001)")
    photos, skipped = load_labelled_photos(storage, folder)
    embedded, unusable = embed_photos(photos, model)
    skipped = [*skipped, *unusable]
    people = sorted({p.person for p in embedded})
    genuine, impostor = pair_distances(embedded)
    if len(people) < 2 or len(genuine) == 0:
        raise BadInputError(
            f"calibration folder {folder}: {len(embedded)} usable photos of {len(people)} "
            "people; it needs at least two people and one person with two or more photos "
            "(FOLDER/<person>/<photo>)"
        )
    default = float(model.embedder.default_threshold)
    points = error_rates(genuine, impostor, threshold_grid(genuine, impostor, default))
    best = recommend(points, target_fmr)
    needed = int(math.ceil(3.0 / target_fmr))
    enough = len(impostor) >= needed
    upper = fmr_upper95(best.false_matches, len(impostor)) if best else 1.0
    return CalibrationReport(
        model=model.name,
        people=len(people),
        photos=len(embedded),
        skipped=tuple(skipped),
        genuine_pairs=len(genuine),
        impostor_pairs=len(impostor),
        target_fmr=target_fmr,
        points=tuple(points),
        recommended=best,
        recommended_fmr_upper95=upper,
        impostors_needed=needed,
        enough_impostors=enough,
        default_threshold=default,
        at_default=error_rates(genuine, impostor, np.array([default]))[0],
        note=_note(best, enough, len(impostor), needed, target_fmr, upper),
        by_size=tuple(
            rates_by_size(photos, embedded, model, sizes, default, best.threshold if best else None)
        ),
    )


def _note(
    best: RatePoint | None, enough: bool, impostors: int, needed: int, target: float, upper: float
) -> str:
    if best is None:
        return f"no threshold on the grid keeps FMR at or below {target:g}"
    if not enough:
        return (
            f"too few impostor pairs to estimate an FMR of {target:g}: {impostors} pairs, "
            f"at least {needed} needed (rule of three). {best.threshold:.2f} only keeps "
            f"every impostor pair of this folder apart; the true FMR there may be up to "
            f"{upper:.3g} (95 % bound). Add photos of more people."
        )
    return (
        f"{best.threshold:.2f} keeps FMR at {best.fmr:.3g} (95 % upper bound {upper:.3g}) "
        f"on {impostors} impostor pairs; pairs share photos, so treat the bound as optimistic"
    )
