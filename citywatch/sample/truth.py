"""Ground truth of the sample footage: typed rows, JSON writing and loading.

``sample/ground_truth.json`` holds segments, people, face appearances, vehicles (their
plates), ``companions`` (``[person, companion]`` pairs who walk together past several
cameras) and ``recurring`` (unknown faces, with no probe, that recur across cameras).
Times are absolute UTC strings with a trailing ``Z``; a box is
``[t, x1, y1, x2, y2]`` where ``t`` is seconds from the segment start of the frame it
was taken from (one frame per 0.5 s: the frame nearest each multiple of 0.5 s) and the
box is the face (or plate) as composited, clipped to the frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from citywatch.errors import BadInputError
from citywatch.times import format_utc


def parse_utc(text: str, where: str) -> datetime:
    if not isinstance(text, str) or not text.endswith("Z"):
        raise BadInputError(f"{where}: expected an ISO UTC time ending in Z, got {text!r}")
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError as exc:
        raise BadInputError(f"{where}: {text!r} is not an ISO time") from exc


@dataclass(frozen=True)
class FaceBox:
    t: float  # seconds from the segment start
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class SegmentTruth:
    camera_id: str
    key: str  # footage/<camera_id>/<YYYYMMDDTHHMMSSZ>.mp4, relative to the sample root
    start: datetime
    duration_s: float
    gps: str | None = None  # mobile cameras: the GPS sidecar's key (<stamp>.gps.csv)


@dataclass(frozen=True)
class PersonTruth:
    person_id: str
    source: str  # the photo composited into the footage (or the probe's origin if absent)
    source_box: tuple[int, int, int, int]  # the face in ``source``
    probe: str | None  # relative path of the probe photo; None: this person has no probe
    probe_kind: str  # other_photo | variant | none
    in_footage: bool
    probe_is_main: bool  # one of the sample's headline searches (always in the footage)


@dataclass(frozen=True)
class AppearanceTruth:
    person_id: str
    camera_id: str
    key: str
    start: datetime
    end: datetime
    min_face_px: int
    max_face_px: int
    boxes: tuple[FaceBox, ...]


@dataclass(frozen=True)
class VehicleTruth:
    """One car's pass: its plate's visible interval, widths and boxes (plate boxes).

    ``min_plate_px``/``max_plate_px`` are over frames where the plate is wholly in view;
    ``best`` is the frame where it is widest (then nearest the frame centre); ``lat``/
    ``lon`` is where it was seen: the camera's position, or for a mobile camera its GPS
    position at ``best``.
    """

    plate: str  # normalised text
    style: str  # front (white plate, car coming nearer) | rear (yellow, going away)
    camera_id: str
    key: str
    start: datetime
    end: datetime
    best: datetime
    min_plate_px: int
    max_plate_px: int
    boxes: tuple[FaceBox, ...]
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class GroundTruth:
    seed: int
    fps: int
    frame_size: tuple[int, int]
    segments: tuple[SegmentTruth, ...]
    people: tuple[PersonTruth, ...]
    appearances: tuple[AppearanceTruth, ...]
    vehicles: tuple[VehicleTruth, ...] = ()
    companions: tuple[tuple[str, str], ...] = ()  # (person, companion walking beside them)
    recurring: tuple[str, ...] = ()  # unknown faces (no probe) seen at several cameras

    def person(self, person_id: str) -> PersonTruth:
        for person in self.people:
            if person.person_id == person_id:
                return person
        raise BadInputError(f"ground truth has no person {person_id!r}")

    def appearances_of(self, person_id: str) -> tuple[AppearanceTruth, ...]:
        return tuple(a for a in self.appearances if a.person_id == person_id)

    def companion_of(self, person_id: str) -> str:
        for person, companion in self.companions:
            if person == person_id:
                return companion
        raise BadInputError(f"ground truth has no companion of {person_id!r}")

    def to_json(self) -> str:
        return json.dumps(_as_json(self), indent=2, sort_keys=True) + "\n"


def _as_json(truth: GroundTruth) -> dict[str, object]:
    return {
        "seed": truth.seed,
        "fps": truth.fps,
        "frame_size": list(truth.frame_size),
        "segments": [
            {
                "camera_id": s.camera_id,
                "key": s.key,
                "start": format_utc(s.start, "seconds"),
                "duration_s": s.duration_s,
                "gps": s.gps,
            }
            for s in truth.segments
        ],
        "people": [
            {
                "person_id": p.person_id,
                "source": p.source,
                "source_box": list(p.source_box),
                "probe": p.probe,
                "probe_kind": p.probe_kind,
                "in_footage": p.in_footage,
                "probe_is_main": p.probe_is_main,
            }
            for p in truth.people
        ],
        "appearances": [
            {
                "person_id": a.person_id,
                "camera_id": a.camera_id,
                "key": a.key,
                "start": format_utc(a.start, "milliseconds"),
                "end": format_utc(a.end, "milliseconds"),
                "min_face_px": a.min_face_px,
                "max_face_px": a.max_face_px,
                "boxes": [[b.t, b.x1, b.y1, b.x2, b.y2] for b in a.boxes],
            }
            for a in truth.appearances
        ],
        "vehicles": [
            {
                "plate": v.plate,
                "style": v.style,
                "camera_id": v.camera_id,
                "key": v.key,
                "start": format_utc(v.start, "milliseconds"),
                "end": format_utc(v.end, "milliseconds"),
                "best": format_utc(v.best, "milliseconds"),
                "min_plate_px": v.min_plate_px,
                "max_plate_px": v.max_plate_px,
                "boxes": [[b.t, b.x1, b.y1, b.x2, b.y2] for b in v.boxes],
                "lat": v.lat,
                "lon": v.lon,
            }
            for v in truth.vehicles
        ],
        "companions": [list(pair) for pair in truth.companions],
        "recurring": list(truth.recurring),
    }


def _field(row: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in row:
        raise BadInputError(f"{where}: missing field {name!r}")
    value = row[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BadInputError(f"{where}: field {name!r} should be {kind}, got {value!r}")
    return value


def _rows(doc: dict[str, Any], name: str, where: str) -> list[dict[str, Any]]:
    rows = _field(doc, name, list, where)
    if not all(isinstance(row, dict) for row in rows):
        raise BadInputError(f"{where}: every entry of {name!r} should be an object")
    return rows


def _box(raw: object, where: str) -> FaceBox:
    if not (
        isinstance(raw, list)
        and len(raw) == 5
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
    ):
        raise BadInputError(f"{where}: a box should be [t, x1, y1, x2, y2], got {raw!r}")
    return FaceBox(float(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]), int(raw[4]))


def _person(row: dict[str, Any], where: str) -> PersonTruth:
    probe = row.get("probe")
    if probe is not None and not isinstance(probe, str):
        raise BadInputError(f"{where}: field 'probe' should be a path or null, got {probe!r}")
    box = row.get("source_box", [0, 0, 0, 0])
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)):
        raise BadInputError(f"{where}: field 'source_box' should be 4 ints, got {box!r}")
    return PersonTruth(
        person_id=_field(row, "person_id", str, where),
        source=_field(row, "source", str, where),
        source_box=(box[0], box[1], box[2], box[3]),
        probe=probe,
        probe_kind=str(row.get("probe_kind", "none" if probe is None else "other_photo")),
        in_footage=_field(row, "in_footage", bool, where),
        probe_is_main=bool(row.get("probe_is_main", False)),
    )


def _appearance(row: dict[str, Any], where: str) -> AppearanceTruth:
    return AppearanceTruth(
        person_id=_field(row, "person_id", str, where),
        camera_id=_field(row, "camera_id", str, where),
        key=_field(row, "key", str, where),
        start=parse_utc(_field(row, "start", str, where), f"{where}.start"),
        end=parse_utc(_field(row, "end", str, where), f"{where}.end"),
        min_face_px=_field(row, "min_face_px", int, where),
        max_face_px=_field(row, "max_face_px", int, where),
        boxes=tuple(_box(b, f"{where}.boxes") for b in _field(row, "boxes", list, where)),
    )


def _optional_float(row: dict[str, Any], name: str, where: str) -> float | None:
    value = row.get(name)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise BadInputError(f"{where}: field {name!r} should be a number or null, got {value!r}")
    return float(value)


def _vehicle(row: dict[str, Any], where: str) -> VehicleTruth:
    style = _field(row, "style", str, where)
    if style not in ("front", "rear"):
        raise BadInputError(f"{where}: field 'style' should be 'front' or 'rear', got {style!r}")
    return VehicleTruth(
        plate=_field(row, "plate", str, where),
        style=style,
        camera_id=_field(row, "camera_id", str, where),
        key=_field(row, "key", str, where),
        start=parse_utc(_field(row, "start", str, where), f"{where}.start"),
        end=parse_utc(_field(row, "end", str, where), f"{where}.end"),
        best=parse_utc(_field(row, "best", str, where), f"{where}.best"),
        min_plate_px=_field(row, "min_plate_px", int, where),
        max_plate_px=_field(row, "max_plate_px", int, where),
        boxes=tuple(_box(b, f"{where}.boxes") for b in _field(row, "boxes", list, where)),
        lat=_optional_float(row, "lat", where),
        lon=_optional_float(row, "lon", where),
    )


def _segment(row: dict[str, Any], where: str) -> SegmentTruth:
    gps = row.get("gps")
    if gps is not None and not isinstance(gps, str):
        raise BadInputError(f"{where}: field 'gps' should be a path or null, got {gps!r}")
    return SegmentTruth(
        camera_id=_field(row, "camera_id", str, where),
        key=_field(row, "key", str, where),
        start=parse_utc(_field(row, "start", str, where), f"{where}.start"),
        duration_s=float(_field(row, "duration_s", (int, float), where)),
        gps=gps,
    )


def _pairs(doc: dict[str, Any], where: str) -> tuple[tuple[str, str], ...]:
    raw = _field(doc, "companions", list, where) if "companions" in doc else []
    pairs = []
    for i, pair in enumerate(raw):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)):
            raise BadInputError(f"{where} companions[{i}]: expected [person_id, companion_id], got {pair!r}")
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _ids(doc: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    raw = _field(doc, name, list, where) if name in doc else []
    if not all(isinstance(v, str) for v in raw):
        raise BadInputError(f"{where}: every entry of {name!r} should be a person id, got {raw!r}")
    return tuple(raw)


def _check_people(truth: GroundTruth, where: str) -> GroundTruth:
    known = {p.person_id for p in truth.people}
    named = [pid for pair in truth.companions for pid in pair] + list(truth.recurring)
    unknown = [pid for pid in named if pid not in known]
    if unknown:
        raise BadInputError(f"{where}: companions/recurring name unknown person {unknown[0]!r}")
    return truth


def load_ground_truth(path: Path) -> GroundTruth:
    """Read ``ground_truth.json``; BadInputError names the file and the bad field."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"cannot read ground truth {path}: {exc}") from exc
    where = str(path)
    if not isinstance(doc, dict):
        raise BadInputError(f"{where}: expected a JSON object")
    size = _field(doc, "frame_size", list, where)
    if len(size) != 2 or not all(isinstance(v, int) for v in size):
        raise BadInputError(f"{where}: frame_size should be [width, height], got {size!r}")
    segments = tuple(
        _segment(row, f"{where} segments[{i}]") for i, row in enumerate(_rows(doc, "segments", where))
    )
    vehicles = _rows(doc, "vehicles", where) if "vehicles" in doc else []
    truth = GroundTruth(
        seed=_field(doc, "seed", int, where),
        fps=_field(doc, "fps", int, where),
        frame_size=(size[0], size[1]),
        segments=segments,
        people=tuple(_person(r, f"{where} people[{i}]") for i, r in enumerate(_rows(doc, "people", where))),
        appearances=tuple(
            _appearance(r, f"{where} appearances[{i}]")
            for i, r in enumerate(_rows(doc, "appearances", where))
        ),
        vehicles=tuple(_vehicle(r, f"{where} vehicles[{i}]") for i, r in enumerate(vehicles)),
        companions=_pairs(doc, where),
        recurring=_ids(doc, "recurring", where),
    )
    return _check_people(truth, where)
