"""The sample-footage generator, checked on real files (a small 4 x 8 s sample plus the
patrol car's 8 s segment)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from citywatch.errors import BadInputError
from citywatch.gps import parse_gps_csv
from citywatch.plates import DEFAULT_PLATE_GRAMMAR, fix_confusables, normalise_plate
from citywatch.sample.dataset import SampleManifest, generate_sample, load_ground_truth
from citywatch.sample.faces import read_source
from citywatch.sample.media import fetch_media
from citywatch.sample.truth import AppearanceTruth, FaceBox, GroundTruth, VehicleTruth
from citywatch.tasks.search.plates import distance_m

SMALL = {"segments_per_camera": 1, "segment_seconds": 8}
FPS, WIDTH, HEIGHT = 15, 1280, 720
FRAMES = 8 * FPS
STILL_CAMERA_IDS = ("cam-queens-rd", "cam-hennessy-rd", "cam-shatin-centre")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return generate_sample(tmp_path_factory.mktemp("sample"), seed=7, **SMALL)


@pytest.fixture(scope="module")
def truth(sample: SampleManifest) -> GroundTruth:
    return load_ground_truth(sample.ground_truth_path)


def decode(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return [(float(f.time or 0.0), f.to_ndarray(format="bgr24")) for f in container.decode(stream)]


def frame_at(path: Path, t: float) -> np.ndarray:
    return min(decode(path), key=lambda item: abs(item[0] - t))[1]


def largest_full_box(appearance: AppearanceTruth) -> FaceBox:
    inside = [b for b in appearance.boxes if b.x1 > 0 and b.y1 > 0 and b.x2 < WIDTH and b.y2 < HEIGHT]
    return max(inside, key=lambda b: b.y2 - b.y1)


def mobile_ids(truth: GroundTruth) -> set[str]:
    return {s.camera_id for s in truth.segments if s.gps}


def test_files_are_named_by_camera_and_utc_start(sample: SampleManifest, truth: GroundTruth) -> None:
    assert len(sample.camera_ids) >= 5
    fixed = len(sample.camera_ids) - len(mobile_ids(truth))
    assert len(sample.segment_keys) == fixed * SMALL["segments_per_camera"] + 1  # + patrol car
    for segment in truth.segments:
        match = re.fullmatch(r"footage/([a-z0-9][a-z0-9_-]*)/(\d{8}T\d{6}Z)\.mp4", segment.key)
        assert match, segment.key
        assert match.group(1) == segment.camera_id
        assert match.group(2) == segment.start.strftime("%Y%m%dT%H%M%SZ")
        assert (sample.root / segment.key).is_file()
    assert sample.cameras_path.is_file() and sample.ground_truth_path.is_file()
    assert [s.key for s in truth.segments] == sample.segment_keys


def test_segments_decode_to_the_expected_frames(sample: SampleManifest) -> None:
    for key in sample.segment_keys:
        frames = decode(sample.root / key)
        assert abs(len(frames) - FRAMES) <= 1, key
        assert all(image.shape == (HEIGHT, WIDTH, 3) for _, image in frames)
        times = [t for t, _ in frames]
        assert times[0] == pytest.approx(0.0, abs=1e-6)
        assert times[-1] == pytest.approx(8 - 1 / FPS, abs=1 / FPS)
        assert all(b > a for a, b in zip(times, times[1:]))


def test_cameras_yaml_has_the_registry_fields(sample: SampleManifest) -> None:
    cameras = yaml.safe_load(sample.cameras_path.read_text())["cameras"]
    assert len(cameras) >= 4
    assert [c["id"] for c in cameras] == sample.camera_ids
    for cam in cameras:
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", cam["id"])
        assert cam["name"] and cam["district"] and cam["kind"] in ("fixed", "mobile")
        if cam["kind"] == "fixed":
            assert 22.1 < cam["lat"] < 22.6 and 113.8 < cam["lon"] < 114.5  # Hong Kong
        else:  # a camera in a car: its GPS sidecar says where it was
            assert "lat" not in cam and "lon" not in cam
        assert cam["height_m"] > 0 and cam["frame_size"] == [WIDTH, HEIGHT]
        assert cam["overlay_regions"]
        for polygon in cam["privacy_masks"]:
            assert len(polygon) >= 3
            assert all(0 <= x < WIDTH and 0 <= y < HEIGHT for x, y in polygon)
    assert any(cam["privacy_masks"] for cam in cameras)
    assert [c["id"] for c in cameras if c["kind"] == "mobile"] == ["car-patrol-kt3"]


def test_no_face_enters_a_privacy_mask(sample: SampleManifest, truth: GroundTruth) -> None:
    cameras = yaml.safe_load(sample.cameras_path.read_text())["cameras"]
    for cam in cameras:
        for polygon in cam["privacy_masks"]:
            xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
            for appearance in truth.appearances:
                if appearance.camera_id != cam["id"]:
                    continue
                for b in appearance.boxes:
                    assert b.x2 <= min(xs) or b.x1 >= max(xs) or b.y2 <= min(ys) or b.y1 >= max(ys)


def test_ground_truth_is_consistent(sample: SampleManifest, truth: GroundTruth) -> None:
    assert (truth.seed, truth.fps, truth.frame_size) == (7, FPS, (WIDTH, HEIGHT))
    segments = {s.key: s for s in truth.segments}
    for a in truth.appearances:
        segment = segments[a.key]
        assert a.camera_id == segment.camera_id
        assert segment.start < a.start < a.end
        assert (a.end - segment.start).total_seconds() <= segment.duration_s
        assert 3.0 <= (a.end - a.start).total_seconds() <= 12.0
        assert 38 <= a.min_face_px <= a.max_face_px <= 200
        assert a.boxes and all(0 <= b.t <= segment.duration_s for b in a.boxes)
        assert all(0 <= b.x1 < b.x2 <= WIDTH and 0 <= b.y1 < b.y2 <= HEIGHT for b in a.boxes)
    for person in truth.people:
        seen_at = {a.camera_id for a in truth.appearances_of(person.person_id)}
        assert person.in_footage == (len(seen_at) >= 2), person.person_id
        if person.probe is not None:
            assert (sample.root / person.probe).is_file()
            assert sample.probes[person.person_id] == sample.root / person.probe
    assert {"obama", "t1-schwimmer"} <= set(sample.people_in_footage)
    assert "biden" in sample.people_absent and "biden" in sample.probes
    assert not truth.appearances_of("biden")


def test_faces_never_overlap(truth: GroundTruth) -> None:
    seen: dict[tuple[str, float], list[FaceBox]] = {}
    for a in truth.appearances:
        for b in a.boxes:
            for other in seen.get((a.key, b.t), []):
                assert b.x2 <= other.x1 or other.x2 <= b.x1 or b.y2 <= other.y1 or other.y2 <= b.y1
            seen.setdefault((a.key, b.t), []).append(b)


def test_every_segment_starts_empty(truth: GroundTruth) -> None:
    starts = {s.key: s.start for s in truth.segments}
    for a in truth.appearances:
        assert (a.start - starts[a.key]).total_seconds() >= 1.0
    for v in truth.vehicles:
        if v.camera_id not in mobile_ids(truth):  # parked cars are in the patrol car's view
            assert (v.start - starts[v.key]).total_seconds() >= 1.0


def test_probes_differ_from_the_composited_photo(sample: SampleManifest, truth: GroundTruth) -> None:
    media = fetch_media()
    for person in truth.people:
        if not person.in_footage or person.probe is None:
            continue
        x1, y1, x2, y2 = person.source_box
        source = read_source(person.source, media)[y1:y2, x1:x2]
        probe = cv2.imread(str(sample.root / person.probe))
        assert probe is not None
        a = cv2.resize(cv2.cvtColor(source, cv2.COLOR_BGR2GRAY), (64, 64)).astype(float)
        b = cv2.resize(cv2.cvtColor(probe, cv2.COLOR_BGR2GRAY), (64, 64)).astype(float)
        assert np.abs(a - b).mean() > 10, person.person_id
    assert truth.person("obama").probe_kind == "other_photo"


def test_person_is_in_the_frame_where_the_box_says(sample: SampleManifest, truth: GroundTruth) -> None:
    on_stills = [a for a in truth.appearances if a.camera_id in STILL_CAMERA_IDS]
    assert on_stills
    for a in on_stills:
        box = largest_full_box(a)
        frames = decode(sample.root / a.key)
        with_person = min(frames, key=lambda item: abs(item[0] - box.t))[1]
        empty = frames[0][1]  # every segment starts with nobody synthetic in view
        region = (slice(box.y1, box.y2), slice(box.x1, box.x2))
        diff = np.abs(with_person[region].astype(int) - empty[region].astype(int)).mean()
        assert diff > 20, (a.person_id, a.camera_id, diff)


def test_a_real_face_detector_finds_the_faces(sample: SampleManifest, truth: GroundTruth) -> None:
    from retinaface import detect_faces

    for a in truth.appearances:
        box = largest_full_box(a)
        rgb = cv2.cvtColor(frame_at(sample.root / a.key, box.t), cv2.COLOR_BGR2RGB)
        found = [(f.x, f.y, f.x + f.width, f.y + f.height) for f in detect_faces(rgb)]
        assert max((iou((box.x1, box.y1, box.x2, box.y2), f) for f in found), default=0) > 0.4


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_same_seed_same_sample_other_seed_other_truth(sample: SampleManifest, tmp_path: Path) -> None:
    again = generate_sample(tmp_path / "again", seed=7, **SMALL)
    assert again.ground_truth_path.read_bytes() == sample.ground_truth_path.read_bytes()
    key = sample.segment_keys[0]
    first, second = decode(sample.root / key), decode(again.root / key)
    assert len(first) == len(second)
    assert all(ta == tb and np.array_equal(a, b) for (ta, a), (tb, b) in zip(first, second))
    assert [(again.root / k).read_bytes() for k in again.gps_keys] == [
        (sample.root / k).read_bytes() for k in sample.gps_keys
    ]
    other = generate_sample(tmp_path / "other", seed=8, **SMALL)
    a_json = json.loads(sample.ground_truth_path.read_text())
    b_json = json.loads(other.ground_truth_path.read_text())
    assert a_json["appearances"] != b_json["appearances"]
    assert a_json["vehicles"] != b_json["vehicles"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"segment_seconds": 7.5}, "segment_seconds"),
        ({"segment_seconds": 4}, "segment_seconds"),
        ({"fps": 0}, "fps"),
        ({"width": 1279}, "frame size"),
        ({"segments_per_camera": 0}, "segments_per_camera"),
    ],
)
def test_bad_settings_are_rejected(tmp_path: Path, overrides: dict[str, float], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        generate_sample(tmp_path, **overrides)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "cannot read ground truth"),
        ('{"seed": 7}', "frame_size"),
        (
            '{"seed": 7, "fps": 15, "frame_size": [1280, 720], "segments": [], "people": [],'
            ' "appearances": [{"person_id": "x"}]}',
            "camera_id",
        ),
        (
            '{"seed": 7, "fps": 15, "frame_size": [1280, 720], "segments": [{"camera_id": "c",'
            ' "key": "k", "start": "2026-11-20T08:00:00", "duration_s": 8}], "people": [],'
            ' "appearances": []}',
            "ending in Z",
        ),
        (
            '{"seed": 7, "fps": 15, "frame_size": [1280, 720], "segments": [], "people": [],'
            ' "appearances": [], "vehicles": [{"plate": "AB1", "style": "side"}]}',
            "'style'",
        ),
        (
            '{"seed": 7, "fps": 15, "frame_size": [1280, 720], "segments": [], "people": [],'
            ' "appearances": [], "vehicles": [{"style": "rear"}]}',
            "'plate'",
        ),
        (
            '{"seed": 7, "fps": 15, "frame_size": [1280, 720], "segments": [], "people": [],'
            ' "appearances": [], "companions": [["a"]]}',
            r"companions\[0\]",
        ),
        (
            '{"seed": 7, "fps": 15, "frame_size": [1280, 720], "segments": [], "people": [],'
            ' "appearances": [], "companions": [["a", "b"]]}',
            "unknown person 'a'",
        ),
        (
            '{"seed": 7, "fps": 15, "frame_size": [1280, 720], "segments": [], "people": [],'
            ' "appearances": [], "recurring": [7]}',
            "'recurring'",
        ),
    ],
)
def test_load_ground_truth_names_the_problem(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "ground_truth.json"
    path.write_text(document)
    with pytest.raises(BadInputError, match=message) as caught:
        load_ground_truth(path)
    assert str(path) in str(caught.value)


# --- vehicles, plates and the patrol car ----------------------------------------------


def best_box(vehicle: VehicleTruth, segment_start: object) -> FaceBox:
    t = (vehicle.best - segment_start).total_seconds()  # type: ignore[operator]
    return min(vehicle.boxes, key=lambda b: abs(b.t - t))


def test_vehicles_with_plates_are_in_the_ground_truth(sample: SampleManifest, truth: GroundTruth) -> None:
    segments = {s.key: s for s in truth.segments}
    plates = [v.plate for v in truth.vehicles]
    assert plates == sample.plates and len(set(plates)) == len(plates)
    for v in truth.vehicles:
        segment = segments[v.key]
        assert v.camera_id == segment.camera_id
        assert normalise_plate(v.plate) == v.plate and DEFAULT_PLATE_GRAMMAR.matches(v.plate)
        assert v.style in ("front", "rear")
        assert segment.start <= v.start <= v.best <= v.end
        assert (v.end - segment.start).total_seconds() <= segment.duration_s
        assert 40 <= v.min_plate_px <= v.max_plate_px <= 200
        assert v.boxes and all(0 <= b.t <= segment.duration_s for b in v.boxes)
        assert all(0 <= b.x1 < b.x2 <= WIDTH and 0 <= b.y1 < b.y2 <= HEIGHT for b in v.boxes)
        assert v.lat is not None and v.lon is not None
        assert 22.1 < v.lat < 22.6 and 113.8 < v.lon < 114.5
    readable = [v for v in truth.vehicles if v.min_plate_px >= 80]
    assert any(v.camera_id not in mobile_ids(truth) for v in readable)
    assert sum(v.camera_id in mobile_ids(truth) for v in readable) >= 2
    assert {v.style for v in truth.vehicles} == {"front", "rear"}


def test_plates_never_cover_faces_masks_or_the_clock(sample: SampleManifest, truth: GroundTruth) -> None:
    cameras = {c["id"]: c for c in yaml.safe_load(sample.cameras_path.read_text())["cameras"]}
    faces: dict[tuple[str, float], list[FaceBox]] = {}
    for a in truth.appearances:
        for b in a.boxes:
            faces.setdefault((a.key, b.t), []).append(b)
    for v in truth.vehicles:
        cam = cameras[v.camera_id]
        keep_out = [tuple(r) for r in cam["overlay_regions"]] + [
            (min(p[0] for p in m), min(p[1] for p in m), max(p[0] for p in m), max(p[1] for p in m))
            for m in cam["privacy_masks"]
        ]
        for b in v.boxes:
            faces_now = [(f.x1, f.y1, f.x2, f.y2) for f in faces.get((v.key, b.t), [])]
            for x1, y1, x2, y2 in keep_out + faces_now:
                assert b.x2 <= x1 or b.x1 >= x2 or b.y2 <= y1 or b.y1 >= y2, (v.plate, b)


def test_a_real_plate_reader_reads_the_plates_where_the_boxes_say(
    sample: SampleManifest, truth: GroundTruth
) -> None:
    from citywatch.models.plate_reader import load_plate_reader

    reader = load_plate_reader()
    starts = {s.key: s.start for s in truth.segments}
    readable = [v for v in truth.vehicles if v.min_plate_px >= 80]
    assert readable
    for v in readable:
        box = best_box(v, starts[v.key])
        image = frame_at(sample.root / v.key, box.t)
        pad = box.x2 - box.x1
        region = (
            max(0, box.x1 - pad),
            max(0, box.y1 - pad),
            min(WIDTH, box.x2 + pad),
            min(HEIGHT, box.y2 + pad),
        )
        texts = [fix_confusables(normalise_plate(r.text)) for r in reader.read(image, region)]
        assert v.plate in texts, (v.plate, v.camera_id, texts)
        # white front plates, yellow rear plates: the plate's background colour
        b, g, r = np.median(image[box.y1 : box.y2, box.x1 : box.x2].reshape(-1, 3), axis=0)
        assert (b / r > 0.8) if v.style == "front" else (b / r < 0.6), (v.plate, v.style, b, g, r)


def test_patrol_car_gps_sidecar_parses_and_places_its_plates(
    sample: SampleManifest, truth: GroundTruth
) -> None:
    (segment,) = [s for s in truth.segments if s.gps]
    assert segment.gps == segment.key.removesuffix(".mp4") + ".gps.csv"
    assert sample.gps_keys == [segment.gps]
    track = parse_gps_csv((sample.root / segment.gps).read_text(), segment.gps, segment.start)
    assert len(track.times) == segment.duration_s + 1  # once a second, start to end
    assert track.times[0] == segment.start.timestamp()
    assert all(b - a == 1.0 for a, b in zip(track.times, track.times[1:]))
    steps = [
        distance_m(*p, *q) for p, q in zip(zip(track.lats, track.lons), zip(track.lats[1:], track.lons[1:]))
    ]
    assert all(2.0 < step < 15.0 for step in steps)  # driving, at a plausible city speed
    cameras = yaml.safe_load(sample.cameras_path.read_text())["cameras"]
    for cam in cameras:  # far from every fixed camera, so a search --near tells them apart
        if cam["kind"] == "fixed":
            assert (
                min(distance_m(cam["lat"], cam["lon"], lat, lon) for lat, lon in zip(track.lats, track.lons))
                > 1000
            )
    on_patrol = [v for v in truth.vehicles if v.camera_id == segment.camera_id]
    assert len(on_patrol) >= 2
    for v in on_patrol:
        assert track.at(v.best) == pytest.approx((v.lat, v.lon))
