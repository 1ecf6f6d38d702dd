"""Threshold calibration: rates on a table of distances, then real photos and the real model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from citywatch.cli.main import main
from citywatch.errors import BadInputError
from citywatch.governance.auth import write_demo_users
from citywatch.models.base import FaceModel
from citywatch.models.faces import load_face_model
from citywatch.sample.media import fetch_media
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.index.faces import crop_around
from citywatch.tasks.search.calibrate import (
    CalibrationReport,
    EmbeddedPhoto,
    RatePoint,
    calibrate,
    error_rates,
    fmr_upper95,
    pair_distances,
    recommend,
)

GENUINE = np.array([0.20, 0.40, 0.70])
IMPOSTOR = np.array([0.50, 0.80, 0.90, 1.00])


@pytest.mark.parametrize(
    ("threshold", "fmr", "fnmr"),
    [
        (0.10, 0 / 4, 3 / 3),
        (0.40, 0 / 4, 1 / 3),  # a pair at exactly the threshold matches (as in search)
        (0.50, 1 / 4, 1 / 3),
        (0.75, 1 / 4, 0 / 3),
        (0.95, 3 / 4, 0 / 3),
        (1.00, 4 / 4, 0 / 3),
    ],
)
def test_error_rates(threshold: float, fmr: float, fnmr: float) -> None:
    (point,) = error_rates(GENUINE, IMPOSTOR, np.array([threshold]))
    assert (point.fmr, point.fnmr) == pytest.approx((fmr, fnmr))
    assert point.false_matches == round(fmr * 4) and point.false_non_matches == round(fnmr * 3)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (0.0, 0.45),  # the largest threshold with no false match at all
        (0.25, 0.75),
        (0.5, 0.85),
        (0.75, 0.95),
        (1.0, 1.05),
    ],
)
def test_recommend_largest_threshold_meeting_target(target: float, expected: float) -> None:
    points = error_rates(GENUINE, IMPOSTOR, np.round(np.arange(0.05, 1.1, 0.1), 2))
    best = recommend(points, target)
    assert best is not None and best.threshold == pytest.approx(expected)


def test_recommend_none_when_no_threshold_meets_target() -> None:
    points = [RatePoint(0.5, 0.1, 0.0, 1, 0)]
    assert recommend(points, 0.01) is None


@pytest.mark.parametrize(
    ("false_matches", "pairs", "low", "high"),
    [
        (0, 3000, 0.0009, 0.0011),  # rule of three: 3 / n
        (0, 300, 0.009, 0.011),
        (5, 1000, 0.0104, 0.0106),
        (0, 0, 1.0, 1.0),
    ],
)
def test_fmr_upper_bound(false_matches: int, pairs: int, low: float, high: float) -> None:
    assert low <= fmr_upper95(false_matches, pairs) <= high


def test_pair_distances_split_genuine_and_impostor() -> None:
    photos = [
        EmbeddedPhoto(person, f"{person}/{i}", np.array(vec, np.float32))
        for i, (person, vec) in enumerate([("a", [0, 0]), ("a", [3, 4]), ("b", [0, 1])])
    ]
    genuine, impostor = pair_distances(photos)
    assert genuine.tolist() == pytest.approx([5.0])
    assert sorted(impostor.tolist()) == pytest.approx([1.0, np.hypot(3, 3)])


# --- real photos, real model -------------------------------------------------------------
def _variants(image: np.ndarray) -> dict[str, np.ndarray]:
    """The photo plus two augmented copies (mirror, brighter and slightly rotated)."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 6, 1.0)
    rotated = cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return {
        "orig": image,
        "mirror": cv2.flip(image, 1),
        "bright": cv2.convertScaleAbs(rotated, alpha=1.1, beta=25),
    }


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return load_face_model("dlib")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, model: FaceModel) -> Path:
    """obama x3, biden, Tom Hanks, the astronaut and the six people of t1.jpg, with variants;
    plus a group photo, a blank image and two stray files that must be skipped."""
    media = fetch_media()
    out = tmp_path_factory.mktemp("calib") / "people"
    people: dict[str, list[np.ndarray]] = {
        "obama": [cv2.imread(str(media / n)) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg")],
        "biden": [cv2.imread(str(media / "biden.jpg"))],
        "hanks": [cv2.resize(cv2.imread(str(media / "Tom_Hanks_54745.png")), (224, 224))],
        "astronaut": [cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)],
    }
    group = cv2.imread(str(media / "t1.jpg"))
    for i, face in enumerate(sorted(model.detector.detect(group), key=lambda f: f.bbox[0])):
        crop, _ = crop_around(group, face, margin=0.5)
        people[f"t1-person{i}"] = [cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)]
    for person, images in people.items():
        (out / person).mkdir(parents=True)
        for n, image in enumerate(images):
            variants = _variants(image) if len(images) == 1 else {"orig": image}
            for name, variant in variants.items():
                cv2.imwrite(str(out / person / f"{n}-{name}.jpg"), variant)
    (out / "group").mkdir()
    cv2.imwrite(str(out / "group" / "t1.jpg"), group)
    cv2.imwrite(str(out / "group" / "wall.png"), np.full((400, 400, 3), 127, np.uint8))
    (out / "group" / "notes.txt").write_text("who is who")
    (out / "README.txt").write_text("one folder per person")
    return out


@pytest.fixture(scope="module")
def report(folder: Path, model: FaceModel) -> CalibrationReport:
    return calibrate(Storage(Settings(storage__root=str(folder.parent))), model, str(folder), 0.001)


def test_calibration_counts_people_photos_and_pairs(report: CalibrationReport) -> None:
    assert (report.people, report.photos) == (10, 3 + 9 * 3)
    assert report.genuine_pairs == 3 + 9 * 3  # C(3,2) for obama, C(3,2) for each of the others
    assert report.impostor_pairs == 30 * 29 // 2 - report.genuine_pairs
    assert report.model == "retinaface-mnet025+dlib-resnet-v1"


def test_calibration_lists_skipped_photos_with_reasons(report: CalibrationReport) -> None:
    skipped = {s.source: s.reason for s in report.skipped}
    assert skipped == {
        "group/t1.jpg": "6 faces found; calibration needs exactly one face per photo",
        "group/wall.png": "no face found",
        "group/notes.txt": "not an image file (use .jpg, .jpeg, .png, .bmp, .webp)",
        "README.txt": "not in a person folder (expected <person>/<photo>)",
    }


def test_rates_are_monotonic_and_separate_people(report: CalibrationReport, model: FaceModel) -> None:
    fmr = [p.fmr for p in report.points]
    fnmr = [p.fnmr for p in report.points]
    assert fmr == sorted(fmr) and fnmr == sorted(fnmr, reverse=True)
    assert (report.points[0].fmr, report.points[-1].fmr, report.points[-1].fnmr) == (0.0, 1.0, 0.0)
    assert report.at_default.fnmr <= 0.1  # the same person is found at the model default
    assert report.default_threshold == model.embedder.default_threshold


def test_rates_by_face_size_shrink_every_larger_photo(report: CalibrationReport) -> None:
    assert [p.face_px for p in report.by_size] == [40, 56, 80, 120]
    for point in report.by_size:
        assert 0 < point.photos_found <= point.photos_shrunk <= report.photos
        assert point.genuine_pairs + point.impostor_pairs == point.photos_found * (report.photos - 1)
        assert point.at_recommended is not None
    small, large = report.by_size[0], report.by_size[-1]
    assert small.photos_found <= large.photos_found or small.photos_shrunk > large.photos_shrunk
    assert large.at_default.fnmr <= small.at_default.fnmr  # small faces are harder to match
    assert large.at_default.fnmr <= 0.2 and large.at_default.fmr == 0.0


def test_recommendation_is_honest_about_too_few_impostor_pairs(report: CalibrationReport) -> None:
    best = report.recommended
    assert best is not None and best.false_matches == 0
    later = [p for p in report.points if p.threshold > best.threshold]
    assert later and later[0].false_matches > 0  # the largest threshold that meets the target
    assert not report.enough_impostors and report.impostors_needed == 3000
    assert "too few impostor pairs" in report.note and "at least 3000" in report.note
    assert report.recommended_fmr_upper95 > report.target_fmr


def test_looser_target_has_enough_pairs(folder: Path, model: FaceModel) -> None:
    loose = calibrate(Storage(Settings(storage__root=str(folder.parent))), model, str(folder), 0.05, sizes=())
    assert loose.enough_impostors and loose.recommended is not None
    assert loose.recommended.fmr <= 0.05 and "too few" not in loose.note


@pytest.mark.parametrize(
    ("layout", "error"),
    [
        ({"solo/a.jpg": "obama.jpg", "solo/b.jpg": "obama2.jpg"}, "at least two people"),
        ({"a/1.jpg": "obama.jpg", "b/1.jpg": "biden.jpg"}, "two or more photos"),
    ],
)
def test_calibration_needs_two_people_and_a_pair(
    tmp_path: Path, model: FaceModel, layout: dict[str, str], error: str
) -> None:
    media = fetch_media()
    for key, name in layout.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes((media / name).read_bytes())
    with pytest.raises(BadInputError, match=error):
        calibrate(Storage(Settings(storage__root=str(tmp_path))), model, str(tmp_path), 0.001)


def test_cli_calibrate_is_for_admins_and_audited(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder.parent / "root"
    write_demo_users(Storage(Settings(storage__root=str(root))))
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", str(root))
    monkeypatch.setenv("CITYWATCH_USER", "demo-investigator")
    assert main(["calibrate", str(folder)]) == 3
    assert "needs the role admin" in capsys.readouterr().err
    monkeypatch.setenv("CITYWATCH_USER", "demo-admin")
    assert main(["calibrate", str(folder), "--target-fmr", "0.01", "--json", "--sizes", "56"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["photos"] == 30 and result["recommended"]["fmr"] <= 0.01
    assert [p["face_px"] for p in result["by_size"]] == [56]
    assert main(["calibrate", str(folder), "--target-fmr", "2"]) == 2
    assert main(["calibrate", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "tentative threshold for FMR <= 0.001" in text and "do not deploy it yet" in text
    assert "too few impostor pairs" in text and "CITYWATCH_FACES__MATCH_THRESHOLD" not in text
    assert "skipped group/t1.jpg: 6 faces found" in text
    assert "by face size" in text and "MATCH_MIN_PX=40 never match" in text
    assert [line.split()[0] for line in text.splitlines() if line.split()[:1] in (["40"], ["120"])] == [
        "40",
        "120",
    ]
    from citywatch.governance.audit_log import AuditLog

    rows = AuditLog(Storage(Settings(storage__root=str(root)))).rows()
    assert [(r.user, r.action, r.outcome, r.result_count) for r in rows] == [
        ("demo-investigator", "calibrate", "refused", 0),
        ("demo-admin", "calibrate", "ok", 30),
        ("demo-admin", "calibrate", "failed", 0),
        ("demo-admin", "calibrate", "ok", 30),
    ]
