"""Plate format presets (``plates.format``): each preset's marks, confusable fixing into
its patterns, the one grammar for reads, search and the watchlist, and off-format reads."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from citywatch.errors import BadInputError
from citywatch.models.plate_reader import PlateRead
from citywatch.plate_formats import FORMAT_NAMES, PRESETS, describe, preset
from citywatch.plates import DEFAULT_PLATE_GRAMMAR, fix_confusables, normalise_plate, parse_plate_query
from citywatch.settings import PlatesSettings, Settings, TrackingSettings
from citywatch.tasks.index.plates import SegmentPlates

# (preset, marks it accepts, marks it refuses)
MARKS = [
    ("hk", ["AB1234", "K8", "TAXIKING"], ["ABCDEFGHI", "Q", "123456789"]),
    ("uk", ["AB12CDE", "A123BCD", "ABC123D", "ABC1234", "1234ABC"], ["AB12CD", "QB12CDE", "1ABC234"]),
    ("eu-generic", ["AB123CD", "B1234", "M1234XY"], ["ABCDEF", "123456", "A1", "ABCDE12345"]),
    ("de", ["BAB1234", "MXY12E", "BX1H"], ["B1234", "ABCDEF1", "AB0123"]),
    ("fr", ["AB123CD", "1234AB75", "12A2B"], ["AB123CO", "ABC123D", "1234AB99"]),
    ("us-generic", ["1ABC234", "ABC1234", "ABC123", "123ABC", "GOHAWKS"], ["1234567", "ABCDEFGH"]),
    ("br-mercosur", ["ABC1D23", "ABC1234"], ["AB1D234", "ABCD123"]),
    ("br-old", ["ABC1234"], ["ABC1D23"]),
    ("au", ["AB12CD", "1AB2CD", "123ABC", "1ABC234", "S123ABC", "SURFER"], ["1234567", "ABCDEFGH"]),
]

# (preset, a misread with confusable characters, the mark it resolves to)
FIXES = [
    ("us-generic", "IABC234", "1ABC234"),  # I -> 1 where a digit must stand
    ("us-generic", "ABC1O34", "ABC1034"),  # O -> 0
    ("us-generic", "0AK1234", "OAK1234"),  # 0 -> O where a letter must stand
    ("us-generic", "0AK123", "OAK123"),
    ("us-generic", "A8C1234", "ABC1234"),
    ("uk", "AB1ZCDE", "AB12CDE"),
    ("uk", "A812CDE", "A812CDE"),  # a valid prefix-series mark (A 812 CDE) is left alone
    ("fr", "A8123CD", "AB123CD"),
    ("br-mercosur", "ABCID23", "ABC1D23"),
    ("br-mercosur", "ABC1023", "ABC1023"),  # an old-series mark stays as read
    ("br-old", "ABCI234", "ABC1234"),
    ("au", "A812CD", "AB12CD"),
    ("de", "BA81234", "BAB1234"),
]


def test_every_format_is_listed_and_described() -> None:
    assert FORMAT_NAMES == (*PRESETS, "custom")
    assert {"hk", "uk", "eu-generic", "de", "fr", "us-generic", "br-mercosur", "br-old", "au"} <= set(PRESETS)
    text = describe()
    for f in PRESETS.values():
        assert f.grammar().patterns and f.source and f"{f.name}: " in text
        assert 0 <= f.fix_targets <= len(f.patterns)
    assert PRESETS["hk"].grammar() == DEFAULT_PLATE_GRAMMAR  # the default is the HK preset


@pytest.mark.parametrize(("name", "good", "bad"), MARKS)
def test_each_preset_accepts_its_marks_and_refuses_others(name: str, good: list[str], bad: list[str]) -> None:
    grammar = preset(name).grammar()
    assert [m for m in good if not grammar.matches(m)] == []
    assert [m for m in bad if grammar.matches(m)] == []


@pytest.mark.parametrize(("name", "read", "mark"), FIXES)
def test_confusables_are_fixed_into_the_presets_patterns(name: str, read: str, mark: str) -> None:
    assert fix_confusables(read, preset(name).grammar()) == mark


def test_the_hong_kong_default_does_not_resolve_us_confusions() -> None:
    """The same misreads under the HK grammar (a catch-all for personalised marks) stay wrong."""
    assert fix_confusables("IABC234") == "IABC234"
    assert fix_confusables("ABC1O34") == "ABC1O34"


def test_the_format_setting_picks_the_grammar_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWATCH_PLATES__FORMAT", "us-generic")
    settings = Settings()
    grammar = settings.plates.plate_grammar()
    assert grammar == preset("us-generic").grammar()
    segment = SegmentPlates(reader=None, plates=settings.plates, tracking=TrackingSettings())
    assert segment.grammar == grammar
    # plate search and the watchlist parse with the same grammar: a US mark conforms
    assert parse_plate_query("1ABC234", grammar).conforms
    assert not parse_plate_query("1ABC234", preset("uk").grammar()).conforms


def test_a_bad_format_or_a_grammar_without_custom_is_refused() -> None:
    with pytest.raises(ValidationError, match="plate format 'us': not a preset; choose one of hk, uk"):
        PlatesSettings(format="us")
    with pytest.raises(ValidationError, match="set plates.format=custom to use your own patterns"):
        PlatesSettings(format="uk", grammar=("^[A-Z]{2}[0-9]{4}$",))
    with pytest.raises(BadInputError, match="not a preset"):
        preset("US-GENERIC")  # names match in full, exactly
    mine = PlatesSettings(format="custom", grammar=("^[A-Z]{2}[0-9]{4}$",), grammar_fix_targets=1)
    assert mine.plate_grammar().patterns == ("^[A-Z]{2}[0-9]{4}$",)


class _SignReader:
    """A stub reader: a confident read of a long shop sign in every region."""

    target_side_px, max_upscale = 480, 4.0

    def read(self, image, region):  # noqa: ANN001, ANN201
        return [PlateRead("SPORTCLUB9", 0.97, (0.97,) * 10, (100.0, 400.0, 300.0, 430.0))]


@pytest.mark.parametrize(("keep_at", "kept"), [(None, False), (0.95, True), (0.99, False)])
def test_a_read_that_fits_no_pattern_is_kept_only_when_sure_and_flagged(
    keep_at: float | None, kept: bool
) -> None:
    plates = SegmentPlates(
        _SignReader(),
        # the stub's "sign" is on a black image: the plate gate (tests/test_plate_gate.py)
        # and the text gate are off here, this is the format rule alone
        PlatesSettings(
            off_format_confidence=keep_at,
            region_min_px=0,
            region_max_aspect=0.0,
            gate_enabled=False,
            text_gate_contrast=0,
        ),
        TrackingSettings(),
    )
    image = np.zeros((720, 1280, 3), np.uint8)
    for n in range(3):
        plates.add_frame(n * 0.5, image, [(50, 300, 400, 560)])
    passes = plates.passes()
    assert [(p.text, p.low_confidence) for p in passes] == ([("SPORTCLUB9", True)] if kept else [])


US_PLATES = ["1OIL023", "OIL1010", "IOB0101", "7LOI100"]


def test_rendered_us_style_plates_are_read_with_the_us_preset() -> None:
    """The real plate reader on rendered plates holding O/0 and I/1; the preset resolves them."""
    from citywatch.models.plate_reader import load_plate_reader
    from citywatch.sample.plate_render import render_plate

    reader = load_plate_reader()
    grammar = preset("us-generic").grammar()
    got = {}
    for text in US_PLATES:
        assert grammar.matches(text), text
        plate = render_plate(text, style="front", width_px=220)
        frame = np.full((300, 400, 3), 90, np.uint8)
        h, w = plate.shape[:2]
        frame[100 : 100 + h, 90 : 90 + w] = plate
        reads = reader.read(frame)
        got[text] = [fix_confusables(normalise_plate(r.text), grammar) for r in reads]
    assert {t: r for t, r in got.items() if t not in r} == {}


def test_the_plate_formats_page_is_the_generated_one() -> None:
    """`python -m citywatch.plate_formats --markdown > docs/plate_formats.md` after a change."""
    from pathlib import Path

    from citywatch.plate_formats import markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "plate_formats.md"
    assert page.read_text() == markdown()
