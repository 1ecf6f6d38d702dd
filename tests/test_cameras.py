"""Camera registry validation: clear errors for what users get wrong."""

import pytest

from citywatch.cameras import parse_cameras
from citywatch.errors import BadInputError

GOOD = """
cameras:
  - id: cam-a
    name: A
    district: Central
    lat: 22.28
    lon: 114.15
    kind: fixed
    height_m: 4.5
    frame_size: [1280, 720]
    privacy_masks:
      - [[0, 0], [100, 0], [100, 100]]
  - id: car-1
    name: Patrol car 1
    kind: mobile
"""


def test_good_registry_parses() -> None:
    cams = parse_cameras(GOOD, "cameras.yaml")
    assert [c.id for c in cams] == ["cam-a", "car-1"]
    row = cams[0].to_row()
    assert row.frame_w == 1280 and row.privacy_masks == [[[0, 0], [100, 0], [100, 100]]]
    assert row.registered


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cameras:\n  - {id: a, name: A, colour: red}", "colour"),
        ("cameras:\n  - {id: a, name: A}\n  - {id: a, name: B}", "duplicate camera id 'a'"),
        ("cameras:\n  - {id: a, name: A, lat: 95, lon: 1}", "cameras.0.lat"),
        ("cameras:\n  - {id: a, name: A, lat: 22, lon: 200}", "cameras.0.lon"),
        ("cameras:\n  - {id: a, name: A, lat: 22}", "both lat and lon"),
        ("cameras:\n  - {id: 'A B', name: A}", "cameras.0.id"),
        ("cameras:\n  - {id: \"x' OR '1'='1\", name: A}", "cameras.0.id"),
        ("cameras:\n  - {id: a, name: A, kind: drone}", "cameras.0.kind"),
        ("cameras:\n  - {id: a, name: A, privacy_masks: [[[0, 0], [1, 1]]]}", ">= 3"),
        (
            "cameras:\n  - {id: a, name: A, frame_size: [100, 100],"
            " privacy_masks: [[[0, 0], [150, 0], [0, 50]]]}",
            "outside the 100x100 frame",
        ),
        ("cameras: [", "not valid YAML"),
        ("- just a list", "mapping"),
    ],
)
def test_bad_registry_names_the_problem(text: str, expected: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse_cameras(text, "cams.yaml")
    assert "cams.yaml" in str(err.value)
    assert expected in str(err.value)
