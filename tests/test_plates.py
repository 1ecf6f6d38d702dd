"""Plate text logic and synthetic plate rendering (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from citywatch.errors import BadInputError
from citywatch.plates import (
    DEFAULT_PLATE_GRAMMAR,
    PlateGrammar,
    fix_confusables,
    match_score,
    normalise_plate,
    parse_plate_query,
    plate_distance,
    vote_plate_text,
)
from citywatch.sample.plate_render import degrade_plate, paste_plate, random_hk_plate, render_plate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AB1234", "AB1234"),
        ("ab 1234", "AB1234"),
        ("AB-1234", "AB1234"),
        (" a.b\t12·34 ", "AB1234"),
        ("AB_12/34", "AB_12/34"),
        ("hk–7", "HK7"),
        ("", ""),
        ("AB@1", "AB@1"),  # not a separator: kept so the grammar can reject it
    ],
)
def test_normalise_plate(text: str, expected: str) -> None:
    assert normalise_plate(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AB1234", True),
        ("HK7", True),
        ("A1", True),
        ("ab 1234", True),
        ("BATMAN", True),
        ("TAXIKING", True),  # 8 characters, personalised
        ("88ROSE", True),
        ("1234", False),  # digits only
        ("ABCDEFGHJ", False),  # 9 characters
        ("AB@1", False),
        ("", False),
    ],
)
def test_default_grammar_accepts_and_rejects(text: str, expected: bool) -> None:
    assert DEFAULT_PLATE_GRAMMAR.matches(text) is expected


@pytest.mark.parametrize(
    ("text", "rank"),
    [("AB1234", 0), ("A81234", 1), ("OB1234", 1), ("AB0123", 1), ("BATMAN", 1), ("1234", None)],
)
def test_default_grammar_prefers_standard_marks(text: str, rank: int | None) -> None:
    assert DEFAULT_PLATE_GRAMMAR.rank(text) == rank


def test_grammar_rejects_bad_patterns() -> None:
    with pytest.raises(BadInputError, match="not a regex"):
        PlateGrammar(("^[A-Z",))
    with pytest.raises(BadInputError, match="at least one pattern"):
        PlateGrammar(())


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        ("A81234", "AB1234"),  # 8 in the letter prefix -> B
        ("AB12O4", "AB1204"),  # O in the number -> 0
        ("0B1234", "DB1234"),  # HK prefixes never use O, D is the partner that fits
        ("5T1234", "ST1234"),
        ("FI5005", "FJ5005"),  # HK's narrow J read as I
        ("ab-12 34", "AB1234"),  # normalised too
        ("AB1234", "AB1234"),  # already a standard mark
        ("A8123", "A8123"),  # already standard (A + 8123): left alone
        ("BATMAN", "BATMAN"),  # personalised, nothing better reachable
        ("1234", "1234"),  # digits only: never corrected
    ],
)
def test_fix_confusables(read: str, expected: str) -> None:
    assert fix_confusables(read, DEFAULT_PLATE_GRAMMAR) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("AB1234", "AB1234", 0.0),
        ("AB1234", "A81234", 0.3),
        ("AB1234", "AB12З4", 1.0),
        ("AB1234", "AB1235", 1.0),
        ("AB1234", "AB123", 1.0),
        ("AB1234", "XAB1234", 1.0),
        ("OB1234", "0B1234", 0.3),
        ("SZ1234", "521234", 0.6),
        ("G6", "6G", 0.6),
        ("", "AB", 2.0),
    ],
)
def test_plate_distance(a: str, b: str, expected: float) -> None:
    assert plate_distance(a, b) == pytest.approx(expected)
    assert plate_distance(b, a) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("query", "text", "is_pattern"),
    [
        ("AB1234", "AB1234", False),
        ("ab-1234", "AB1234", False),
        ("AB12*", "AB12*", True),
        ("a?1234", "A?1234", True),
        ("**12**", "*12*", True),
    ],
)
def test_parse_plate_query_accepts(query: str, text: str, is_pattern: bool) -> None:
    parsed = parse_plate_query(query, DEFAULT_PLATE_GRAMMAR)
    assert (parsed.text, parsed.is_pattern) == (text, is_pattern)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x' OR '1'='1", "not allowed"),
        ("AB1234; DROP TABLE plates", "not allowed"),
        ("AB[12]34", "not allowed"),
        ("../../etc/passwd", "not allowed"),
        ("  - . ", "empty"),
        ("***", "at least one"),
        ("A" * 40, "at most"),
    ],
)
def test_parse_plate_query_rejects_hostile_input(query: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message) as info:
        parse_plate_query(query, DEFAULT_PLATE_GRAMMAR)
    assert "plate query" in str(info.value)


def test_parse_plate_query_names_the_bad_characters() -> None:
    with pytest.raises(BadInputError) as info:
        parse_plate_query("x' OR '1'='1", DEFAULT_PLATE_GRAMMAR)
    assert "'=" in str(info.value) and "x' OR" in str(info.value)


def test_parse_plate_query_marks_nonconforming_exact_queries() -> None:
    assert parse_plate_query("AB1234").conforms
    assert not parse_plate_query("1234").conforms


@pytest.mark.parametrize(
    ("query", "plate", "expected"),
    [
        ("AB1234", "AB1234", 0.0),
        ("AB1234", "ab 1234", 0.0),
        ("AB1234", "A81234", 0.3),
        ("AB1234", "AB1235", 1.0),
        ("AB1234", "XY9876", None),
        ("AB12*", "AB1234", 0.0),
        ("AB12*", "AB12", 0.0),
        ("AB12*", "A81299", 0.3),  # fuzzy on patterns too
        ("AB12*", "XY1234", None),
        ("A?1234", "AK1234", 0.0),
        ("A?1234", "AK12345", 1.0),
        ("*34", "AB1234", 0.0),
        ("*34", "AB1235", 1.0),
    ],
)
def test_match_score(query: str, plate: str, expected: float | None) -> None:
    score = match_score(parse_plate_query(query), plate)
    assert score == (None if expected is None else pytest.approx(expected))


def test_match_score_respects_max_edits() -> None:
    strict = parse_plate_query("AB1234", max_edits=0.0)
    assert match_score(strict, "A81234") is None
    loose = parse_plate_query("AB1234", max_edits=2.0)
    assert match_score(loose, "AB12") == pytest.approx(2.0)


def _confs(value: float, n: int) -> tuple[float, ...]:
    return (value,) * n


@pytest.mark.parametrize(
    ("reads", "text", "low"),
    [
        ([("AB1234", _confs(0.9, 6))], "AB1234", False),
        (
            [("AB1234", _confs(0.9, 6)), ("A81234", _confs(0.6, 6)), ("AB1234", _confs(0.8, 6))],
            "AB1234",
            False,
        ),
        # the most frequent length wins over a single long misread
        (
            [("AB1234", _confs(0.9, 6)), ("AB1234", _confs(0.9, 6)), ("AB12345", _confs(0.99, 7))],
            "AB1234",
            False,
        ),
        # confidence beats count at a position, but the disagreement is flagged
        (
            [
                ("AB1234", (0.9, 0.95, 0.9, 0.9, 0.9, 0.9)),
                ("A81234", (0.9, 0.3, 0.9, 0.9, 0.9, 0.9)),
                ("A81234", (0.9, 0.3, 0.9, 0.9, 0.9, 0.9)),
            ],
            "AB1234",
            True,
        ),
        # two weak disagreeing reads: low confidence
        ([("AB1234", _confs(0.6, 6)), ("A81234", _confs(0.6, 6))], "AB1234", True),
        ([("", ()), ("HK7", _confs(0.9, 3))], "HK7", False),
    ],
)
def test_vote_plate_text(reads: list[tuple[str, tuple[float, ...]]], text: str, low: bool) -> None:
    voted = vote_plate_text(reads)
    assert voted.text == text
    assert voted.low_confidence is low
    assert len(voted.char_confidences) == len(text)
    assert all(0.0 <= c <= 1.0 for c in voted.char_confidences)


@pytest.mark.parametrize(
    ("reads", "message"),
    [
        ([], "no non-empty reads"),
        ([("", ())], "no non-empty reads"),
        ([("AB1", (0.9,))], "1 confidences for 3"),
    ],
)
def test_vote_plate_text_rejects_bad_reads(reads: list[tuple[str, tuple[float, ...]]], message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        vote_plate_text(reads)


@pytest.mark.parametrize(
    ("style", "width", "expected_bgr"),
    [("front", 120, (245, 245, 245)), ("rear", 200, (20, 200, 250)), ("rear", 100, (20, 200, 250))],
)
def test_render_plate_size_and_colour(style: str, width: int, expected_bgr: tuple[int, int, int]) -> None:
    plate = render_plate("AB1234", style=style, width_px=width)  # type: ignore[arg-type]
    assert plate.dtype == np.uint8
    assert plate.shape == (round(width * 110 / 520), width, 3)
    # most pixels are background: the median is the style's colour
    background = np.median(plate.reshape(-1, 3), axis=0)
    assert np.abs(background - np.array(expected_bgr)).max() <= 30
    assert plate.min() < 60  # black characters / border


def test_render_plate_rejects_bad_input() -> None:
    with pytest.raises(BadInputError, match="style"):
        render_plate("AB1", style="side", width_px=100)  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="width"):
        render_plate("AB1", style="front", width_px=4)


def test_degrade_and_paste() -> None:
    rng = np.random.default_rng(0)
    plate = render_plate("HK7", style="rear", width_px=100, rng=rng)
    warped = degrade_plate(
        plate, rng, blur=2.0, rotation_deg=5.0, perspective=0.05, noise=4.0, jpeg_quality=50
    )
    assert warped.shape[2] == 4 and warped.shape[0] > plate.shape[0]
    frame = np.full((200, 300, 3), 90, dtype=np.uint8)
    pasted = paste_plate(frame, warped, 50, 60)
    assert pasted is not frame and frame.max() == 90  # input untouched
    assert (pasted != 90).any()
    clipped = paste_plate(frame, warped, 280, 190)  # mostly outside: clipped, no error
    assert clipped.shape == frame.shape


def test_random_hk_plates_are_plausible() -> None:
    rng = np.random.default_rng(5)
    plates = [random_hk_plate(rng) for _ in range(200)]
    assert all(DEFAULT_PLATE_GRAMMAR.matches(p) for p in plates)
    assert sum(DEFAULT_PLATE_GRAMMAR.rank(p) == 0 for p in plates) > 150
