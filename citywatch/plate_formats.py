"""Plate format presets: the plate grammar for a city, picked with ``plates.format``.

Each preset is a :class:`~citywatch.plates.PlateGrammar` over normalised plate text
(A-Z and 0-9, separators and spaces removed, two-line plates joined top line first):
the patterns a registry issues today, most preferred first, then (where the country
has them) older series and personalised/vanity marks. Confusable fixing (O/0, I/1,
B/8, ...) may only correct a read *into* the first ``fix_targets`` patterns, so a
catch-all pattern never turns digits into a word.

The patterns are simplified from public descriptions of each scheme (the Wikipedia
article "Vehicle registration plates of <country>" and the registries it cites); they
check the shape of a mark, not whether it was issued. A city with other plates, or
several schemes on its roads, sets ``plates.format=custom`` and lists its own patterns
in ``plates.grammar``. ``python -m citywatch.plate_formats`` prints every preset.
"""

from __future__ import annotations

from dataclasses import dataclass

from citywatch.errors import BadInputError
from citywatch.plates import HK_PERSONALISED, HK_STANDARD, PlateGrammar

# personalised/vanity marks: letters and digits with at least one letter
_VANITY_7 = r"^(?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,7}$"


@dataclass(frozen=True)
class PlateFormat:
    name: str
    title: str
    patterns: tuple[tuple[str, str], ...]  # (regex, what it is), most preferred first
    fix_targets: int  # leading patterns confusable fixing may target
    source: str

    def grammar(self) -> PlateGrammar:
        return PlateGrammar(tuple(p for p, _ in self.patterns), self.fix_targets)


PRESETS: dict[str, PlateFormat] = {
    f.name: f
    for f in (
        PlateFormat(
            "hk",
            "Hong Kong",
            (
                (HK_STANDARD, "standard mark: 1-2 letters (no I, O, Q), 1-4 digits, no leading 0 (AB1234)"),
                (HK_PERSONALISED, "personalised mark: 2-8 letters and digits, at least one letter"),
            ),
            1,
            "Transport Department, Hong Kong: vehicle registration marks; Wikipedia: "
            "Vehicle registration plates of Hong Kong",
        ),
        PlateFormat(
            "uk",
            "United Kingdom (Great Britain)",
            (
                (r"^[A-HJ-PR-Y]{2}[0-9]{2}[A-HJ-PR-Z]{3}$", "current (2001-): AB12CDE"),
                (r"^[A-HJ-NPR-TV-Y][1-9][0-9]{0,2}[A-HJ-PR-Y]{3}$", "prefix (1983-2001): A123BCD"),
                (r"^[A-HJ-PR-Y]{3}[1-9][0-9]{0,2}[A-HJ-NPR-TV-Y]$", "suffix (1963-1983): ABC123D"),
                (r"^([A-Z]{1,3}[1-9][0-9]{0,3}|[1-9][0-9]{0,3}[A-Z]{1,3})$", "dateless: ABC1234, 1234ABC"),
            ),
            3,
            "DVLA INF104 (vehicle registration numbers and number plates); Wikipedia: "
            "Vehicle registration plates of the United Kingdom",
        ),
        PlateFormat(
            "eu-generic",
            "European Union, any country (shape only)",
            (
                (
                    r"^(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*[0-9])[A-Z0-9]{4,8}$",
                    "4-8 letters and digits with at least one of each (no fixing target)",
                ),
            ),
            0,
            "Council Regulation (EC) No 2411/98 (the EU plate); national schemes vary: "
            "prefer a country preset or custom",
        ),
        PlateFormat(
            "de",
            "Germany",
            (
                (
                    r"^(?=[A-Z0-9]{3,8}$)[A-Z]{2,5}[1-9][0-9]{0,3}[EH]?$",
                    "district (1-3 letters) + 1-2 letters + 1-4 digits, E (electric) or "
                    "H (historic) suffix: BAB1234, MXY12E",
                ),
            ),
            1,
            "Fahrzeug-Zulassungsverordnung (FZV) Anlage 4; Wikipedia: Vehicle "
            "registration plates of Germany (umlauts read as their base letter)",
        ),
        PlateFormat(
            "fr",
            "France",
            (
                (r"^[A-HJ-NP-TV-Z]{2}[0-9]{3}[A-HJ-NP-TV-Z]{2}$", "SIV (2009-): AB123CD (no I, O, U)"),
                (
                    r"^[1-9][0-9]{0,3}[A-Z]{1,3}(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6])$",
                    "FNI (before 2009): 1234AB75 (number, letters, departement)",
                ),
            ),
            1,
            "Arrete du 9 fevrier 2009 (SIV); Wikipedia: Vehicle registration plates of France",
        ),
        PlateFormat(
            "us-generic",
            "United States, common state serials",
            (
                (r"^[1-9][A-Z]{3}[0-9]{3}$", "1ABC234 (California and others; never a leading 0)"),
                (r"^[A-Z]{3}[0-9]{4}$", "ABC1234 (New York, Texas, Pennsylvania and others)"),
                (r"^[A-Z]{3}[0-9]{3}$", "ABC123"),
                (r"^[0-9]{3}[A-Z]{3}$", "123ABC"),
                (_VANITY_7, "vanity: 2-7 letters and digits, at least one letter"),
            ),
            4,
            "state DMV serial formats as listed in Wikipedia: Vehicle registration "
            "plates of the United States (state name and slogan lines are not part of the mark)",
        ),
        PlateFormat(
            "br-mercosur",
            "Brazil, Mercosur plates (old series still accepted)",
            (
                (r"^[A-Z]{3}[0-9][A-Z][0-9]{2}$", "Mercosur (2018-): ABC1D23"),
                (r"^[A-Z]{3}[0-9]{4}$", "old series (1990-2018): ABC1234"),
            ),
            2,
            "CONTRAN Resolucao 780/2019; Wikipedia: Vehicle registration plates of Brazil",
        ),
        PlateFormat(
            "br-old",
            "Brazil, pre-Mercosur plates only",
            ((r"^[A-Z]{3}[0-9]{4}$", "old series (1990-2018): ABC1234"),),
            1,
            "CONTRAN Resolucao 231/2007; Wikipedia: Vehicle registration plates of Brazil",
        ),
        PlateFormat(
            "au",
            "Australia, common state serials",
            (
                (r"^[A-Z]{2}[0-9]{2}[A-Z]{2}$", "New South Wales: AB12CD"),
                (r"^[0-9][A-Z]{2}[0-9][A-Z]{2}$", "Victoria: 1AB2CD"),
                (r"^[0-9]{3}[A-Z]{3}$", "Queensland: 123ABC"),
                (r"^[1-9][A-Z]{3}[0-9]{3}$", "Western Australia: 1ABC234"),
                (r"^S[0-9]{3}[A-Z]{3}$", "South Australia: S123ABC"),
                (r"^(?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,6}$", "personalised: 2-6 letters and digits"),
            ),
            5,
            "state registries as listed in Wikipedia: Vehicle registration plates of Australia",
        ),
    )
}
CUSTOM = "custom"
FORMAT_NAMES = (*PRESETS, CUSTOM)


def preset(name: str) -> PlateFormat:
    """The preset called ``name`` (exactly), or a clear error listing the choices."""
    found = PRESETS.get(name)
    if found is None:
        raise BadInputError(
            f"plate format {name!r}: not a preset; choose one of {', '.join(FORMAT_NAMES)} "
            "(custom: your own patterns in plates.grammar)"
        )
    return found


def describe() -> str:
    """Every preset with its patterns and sources (docs and ``python -m``)."""
    lines = []
    for f in PRESETS.values():
        lines.append(f"{f.name}: {f.title} (confusable fixes target the first {f.fix_targets})")
        lines.extend(f"  {regex}    {what}" for regex, what in f.patterns)
        lines.append(f"  source: {f.source}")
    return "\n".join(lines)


_INTRO = """# Plate formats (`CITYWATCH_PLATES__FORMAT`)

The plate grammar is a city's choice: indexing keeps only reads that fit it (confusable
characters such as O/0, I/1, B/8 are fixed *into* its preferred patterns), plate search
marks queries that do not fit it, and watchlist plates are checked against it. Patterns
are over normalised text: A-Z and 0-9, separators removed, two-line plates joined top
line first. A read that already fits a pattern confusable fixing targets is never
changed (several series are on the road at once). A read that fits no pattern is
dropped, or kept flagged `low_confidence` when `CITYWATCH_PLATES__OFF_FORMAT_CONFIDENCE`
is set and its mean character confidence reaches it.

The patterns check the shape of a mark, not whether it was issued; they are simplified
from public descriptions (sources below). A city with other plates, or a mix, sets
`CITYWATCH_PLATES__FORMAT=custom` and lists its own patterns in
`CITYWATCH_PLATES__GRAMMAR` (a JSON list, most preferred first) and
`CITYWATCH_PLATES__GRAMMAR_FIX_TARGETS`. This page is generated:
`python -m citywatch.plate_formats --markdown > docs/plate_formats.md`.
"""


def markdown() -> str:
    """docs/plate_formats.md: every preset, its patterns (fix targets marked) and source."""
    parts = [_INTRO]
    for f in PRESETS.values():
        parts.append(f"\n## `{f.name}`: {f.title}\n\n| pattern | mark | fixes target it |\n|---|---|---|")
        for i, (regex, what) in enumerate(f.patterns):
            parts.append(f"| `{regex}` | {what} | {'yes' if i < f.fix_targets else 'no'} |")
        parts.append(f"\nSource: {f.source}.")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(markdown() if "--markdown" in sys.argv[1:] else describe() + "\n")
