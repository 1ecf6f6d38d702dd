"""Licence-plate text logic: normalisation, grammar, confusables, distance, queries, voting.

Pure functions, no models. Plate text is compared in *normalised* form: upper case
``A-Z0-9`` only (see :func:`normalise_plate`).

Default grammar (Hong Kong), in order of preference:

1. ``standard``: one or two letters then a number 1-9999 without a leading zero,
   ``^[A-HJ-NPR-Z]{1,2}[1-9][0-9]{0,3}$``. Ordinary HK marks never use I, O or Q
   and never start the number with 0, which is what lets :func:`fix_confusables`
   tell ``0B1234`` (a misread) from a real mark.
2. ``personalised``: 2-8 letters/digits with at least one letter,
   ``^(?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,8}$``. All-digit strings are rejected (no HK mark
   is all digits; a bare number on a car is more likely a taxi or fleet number).
   I, O and Q are allowed here so that a grammar check never rejects a real mark.

Because (2) accepts almost any alphanumeric string, "matches the grammar" is a weak
filter; the grammar's *order* carries the information: a read that only matches a
later pattern but is one confusable swap away from an earlier one is corrected.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from citywatch.errors import BadInputError

_SEPARATORS = re.compile(r"[\s\-\.\u00b7\u2010-\u2015]+")
_QUERY_ALLOWED = re.compile(r"[A-Z0-9*?]")

CONFUSABLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("O", "0"),
    ("I", "1"),
    ("B", "8"),
    ("S", "5"),
    ("Z", "2"),
    ("D", "0"),
    ("G", "6"),
)
# fix_confusables also tries these: HK's narrow J is often read as I or 1, and HK
# ordinary marks never use I, so the grammar decides. Not used by plate_distance.
CORRECTION_PAIRS: tuple[tuple[str, str], ...] = (*CONFUSABLE_PAIRS, ("I", "J"), ("1", "J"))
CONFUSABLE_COST = 0.3
EDIT_COST = 1.0

_CONFUSABLE_SET: frozenset[frozenset[str]] = frozenset(frozenset(p) for p in CONFUSABLE_PAIRS)
_ALTERNATIVES: dict[str, tuple[str, ...]] = {}
for _a, _b in CORRECTION_PAIRS:
    _ALTERNATIVES[_a] = (*_ALTERNATIVES.get(_a, ()), _b)
    _ALTERNATIVES[_b] = (*_ALTERNATIVES.get(_b, ()), _a)


def normalise_plate(text: str) -> str:
    """Upper-case ``text`` and drop separators: whitespace, hyphens and dashes, dots, ``·``.

    Characters that are neither separators nor ASCII letters/digits are kept (upper
    cased) so that a grammar check can reject them; nothing is silently invented.
    """
    return _SEPARATORS.sub("", text).upper()


# --- grammar -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlateGrammar:
    """Accepted plate shapes: regexes over normalised text, most preferred first.

    ``fix_targets``: how many leading patterns :func:`fix_confusables` may correct a
    read *into* (None: all). Catch-all patterns such as HK personalised marks should
    sit after it, so that e.g. a digits-only read is never "fixed" into a word.
    """

    patterns: tuple[str, ...]
    fix_targets: int | None = None
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.patterns:
            raise BadInputError("plate grammar: needs at least one pattern, got none")
        compiled = []
        for pattern in self.patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise BadInputError(f"plate grammar pattern {pattern!r}: not a regex ({exc})") from exc
        object.__setattr__(self, "_compiled", tuple(compiled))
        if self.fix_targets is not None and not 0 <= self.fix_targets <= len(self.patterns):
            raise BadInputError(
                f"plate grammar fix_targets={self.fix_targets}: must be 0..{len(self.patterns)}"
            )

    @classmethod
    def from_patterns(cls, patterns: Sequence[str], fix_targets: int | None = None) -> PlateGrammar:
        return cls(tuple(patterns), fix_targets)

    def rank(self, text: str) -> int | None:
        """Index of the first pattern the normalised ``text`` fully matches, or None."""
        for index, pattern in enumerate(self._compiled):
            if pattern.fullmatch(text):
                return index
        return None

    def matches(self, text: str) -> bool:
        """True when normalised ``text`` fits any pattern."""
        return self.rank(normalise_plate(text)) is not None


HK_STANDARD = r"^[A-HJ-NPR-Z]{1,2}[1-9][0-9]{0,3}$"
HK_PERSONALISED = r"^(?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,8}$"
DEFAULT_PLATE_GRAMMAR = PlateGrammar((HK_STANDARD, HK_PERSONALISED), fix_targets=1)


def fix_confusables(text: str, grammar: PlateGrammar = DEFAULT_PLATE_GRAMMAR, *, max_swaps: int = 2) -> str:
    """Swap confusable characters (O/0, I/1, B/8, ...) when that improves the grammar fit.

    The read is normalised first. Candidates swap up to ``max_swaps`` characters for
    their partners in ``CORRECTION_PAIRS`` (the confusable pairs plus I/J and 1/J); the
    candidate matching the most preferred pattern
    wins, ties going to fewer swaps, then to the leftmost swap. A read is changed
    only when the winner ranks strictly better than the read itself, and never when
    the read is all digits (usually a partial read that lost its letters). With the HK
    grammar: ``A81234`` -> ``AB1234``, ``AB12O4`` -> ``AB1204``, ``0B1234`` ->
    ``DB1234`` (HK prefixes never use O, so D is the partner that fits), ``FI5005``
    -> ``FJ5005``, while
    ``BATMAN`` or ``A8123`` (already a standard mark) are left alone. A read that fits
    any fix target is left alone too (Brazil's ``ABC1023`` is an old-series mark, not a
    misread Mercosur ``ABC1O23``).
    """
    plate = normalise_plate(text)
    if plate.isdigit():
        return plate
    current = grammar.rank(plate)
    targets = len(grammar.patterns) if grammar.fix_targets is None else grammar.fix_targets
    if current is not None and current < targets:
        return plate  # already a mark the format issues (several series may be on the road)
    # a candidate must rank strictly better than this: the read itself, and a fix target
    limit = targets if current is None else min(current, targets)
    best = plate
    positions = [i for i, ch in enumerate(plate) if ch in _ALTERNATIVES]
    for swaps in range(1, max_swaps + 1):
        for chosen in itertools.combinations(positions, swaps):
            for replacement in itertools.product(*(_ALTERNATIVES[plate[i]] for i in chosen)):
                chars = list(plate)
                for i, ch in zip(chosen, replacement, strict=True):
                    chars[i] = ch
                candidate = "".join(chars)
                rank = grammar.rank(candidate)
                if rank is not None and rank < limit:
                    best, limit = candidate, rank
        if limit == 0:
            break
    return best


# --- distance ------------------------------------------------------------------------


def substitution_cost(a: str, b: str) -> float:
    """0 for equal characters, 0.3 for a confusable pair, 1.0 otherwise."""
    if a == b:
        return 0.0
    if frozenset((a, b)) in _CONFUSABLE_SET:
        return CONFUSABLE_COST
    return EDIT_COST


def plate_distance(a: str, b: str) -> float:
    """Weighted Levenshtein distance between two normalised plates.

    Confusable substitutions cost 0.3; other substitutions, insertions and deletions 1.0.
    """
    previous = [j * EDIT_COST for j in range(len(b) + 1)]
    for i, ca in enumerate(a, start=1):
        row = [i * EDIT_COST]
        for j, cb in enumerate(b, start=1):
            row.append(
                min(
                    previous[j] + EDIT_COST,
                    row[j - 1] + EDIT_COST,
                    previous[j - 1] + substitution_cost(ca, cb),
                )
            )
        previous = row
    return round(previous[-1], 6)


def _pattern_distance(pattern: str, text: str) -> float:
    """Weighted edit distance where ``*`` matches any run and ``?`` any one character."""
    previous = [j * EDIT_COST for j in range(len(text) + 1)]
    for cp in pattern:
        if cp == "*":
            row = [previous[0]]
            for j in range(1, len(text) + 1):
                row.append(min(previous[j], row[j - 1]))
        else:
            row = [previous[0] + EDIT_COST]
            for j, ct in enumerate(text, start=1):
                sub = 0.0 if cp == "?" else substitution_cost(cp, ct)
                row.append(min(previous[j] + EDIT_COST, row[j - 1] + EDIT_COST, previous[j - 1] + sub))
        previous = row
    return round(previous[-1], 6)


# --- queries -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlateQuery:
    """A parsed plate search: an exact plate or a ``*``/``?`` pattern, normalised."""

    raw: str
    text: str
    is_pattern: bool
    conforms: bool  # exact plate fits the grammar (patterns: True)
    max_edits: float


MAX_QUERY_CHARS = 16


def parse_plate_query(
    text: str, grammar: PlateGrammar = DEFAULT_PLATE_GRAMMAR, *, max_edits: float = 1.0
) -> PlateQuery:
    """Parse a user's plate query (``AB1234``, ``ab-1234``, ``AB12*``, ``?B1234``).

    Raises BadInputError naming the query when it is empty, too long or holds
    characters outside ``A-Z0-9*?`` after normalisation. An exact query that does not
    fit the grammar is allowed (``conforms=False``): foreign or odd plates exist.
    """
    if max_edits < 0:
        raise BadInputError(f"plate query {text!r}: max_edits must be >= 0, got {max_edits}")
    normalised = normalise_plate(text)
    if not normalised:
        raise BadInputError(f"plate query {text!r}: empty after removing separators")
    bad = sorted({ch for ch in normalised if not _QUERY_ALLOWED.fullmatch(ch)})
    if bad:
        raise BadInputError(
            f"plate query {text[:40]!r}: characters {''.join(bad)!r} not allowed (only A-Z, 0-9, * and ?)"
        )
    if len(normalised) > MAX_QUERY_CHARS:
        raise BadInputError(
            f"plate query {text[:40]!r}: {len(normalised)} characters, at most {MAX_QUERY_CHARS} allowed"
        )
    collapsed = re.sub(r"\*+", "*", normalised)
    if collapsed.strip("*") == "":
        raise BadInputError(f"plate query {text!r}: a pattern needs at least one letter, digit or '?'")
    is_pattern = "*" in collapsed or "?" in collapsed
    conforms = is_pattern or grammar.rank(collapsed) is not None
    return PlateQuery(raw=text, text=collapsed, is_pattern=is_pattern, conforms=conforms, max_edits=max_edits)


def match_score(query: PlateQuery, plate_text: str) -> float | None:
    """Score of ``plate_text`` for ``query``: 0.0 exact, else weighted distance, None if too far.

    Patterns: 0.0 when the pattern matches (fnmatch semantics on normalised text),
    otherwise the weighted edit distance with wildcards (``*`` any run, ``?`` any one).
    """
    plate = normalise_plate(plate_text)
    if not plate:
        return None
    if query.is_pattern:
        if fnmatch.fnmatchcase(plate, query.text):
            return 0.0
        distance = _pattern_distance(query.text, plate)
    else:
        if plate == query.text:
            return 0.0
        distance = plate_distance(query.text, plate)
    return distance if distance <= query.max_edits + 1e-9 else None


# --- voting --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VotedText:
    """A track's plate text voted from several reads."""

    text: str
    char_confidences: tuple[float, ...]
    reads: int  # reads that voted (same length as the winner)
    low_confidence: bool


def vote_plate_text(
    reads: Sequence[tuple[str, tuple[float, ...]]], *, min_char_confidence: float = 0.5
) -> VotedText:
    """Character-level vote over reads of one plate in a track.

    Each read is ``(normalised_text, per_char_confidences)``. Empty reads are ignored.
    The most frequent length wins (ties: larger summed confidence). At each position
    every read of that length votes for its character with its confidence; a
    character's confidence is its summed vote divided by the number of voting reads,
    so disagreement and weak reads both lower it. ``low_confidence`` is set when any
    character's confidence is under ``min_char_confidence``.
    """
    usable: list[tuple[str, tuple[float, ...]]] = []
    for text, confs in reads:
        if len(text) != len(confs):
            raise BadInputError(f"plate read {text!r}: {len(confs)} confidences for {len(text)} characters")
        if text:
            usable.append((text, confs))
    if not usable:
        raise BadInputError("plate vote: no non-empty reads to vote on")
    by_length: dict[int, list[tuple[str, tuple[float, ...]]]] = defaultdict(list)
    for read in usable:
        by_length[len(read[0])].append(read)
    length = max(by_length, key=lambda n: (len(by_length[n]), sum(sum(c) for _, c in by_length[n])))
    group = by_length[length]
    chars: list[str] = []
    confidences: list[float] = []
    for position in range(length):
        votes: dict[str, float] = defaultdict(float)
        for text, confs in group:
            votes[text[position]] += max(0.0, min(1.0, confs[position]))
        winner = max(votes, key=lambda ch: (votes[ch], ch))
        chars.append(winner)
        confidences.append(round(votes[winner] / len(group), 6))
    return VotedText(
        text="".join(chars),
        char_confidences=tuple(confidences),
        reads=len(group),
        low_confidence=any(c < min_char_confidence for c in confidences),
    )
