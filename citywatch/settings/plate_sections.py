"""The ``plates`` section of :class:`citywatch.settings.Settings`: plate reading while
indexing (regions, text gate, formats, the plate acceptance rule), set as
``CITYWATCH_PLATES__<FIELD>``; ``SegmentPlates`` receives it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from citywatch.errors import BadInputError
from citywatch.plate_formats import CUSTOM, FORMAT_NAMES, preset
from citywatch.plates import DEFAULT_PLATE_GRAMMAR, PlateGrammar
from citywatch.settings.sections import Section

if TYPE_CHECKING:
    from citywatch.plate_gate import GateThresholds


class PlatesSettings(Section):
    enabled: bool = Field(True, description="Read licence plates while indexing.")
    format: str = Field(
        "hk",
        description="The city's plate scheme: a preset (" + ", ".join(FORMAT_NAMES[:-1]) + ") or "
        "custom (the patterns in plates.grammar). Reads, plate search and watchlist plates are "
        "checked and confusable-fixed against it; `python -m citywatch.plate_formats` lists each "
        "preset's patterns and sources.",
    )
    grammar: tuple[str, ...] = Field(
        DEFAULT_PLATE_GRAMMAR.patterns,
        description="With plates.format=custom: regexes over normalised plate text (A-Z0-9, "
        "two-line plates joined top line first), most preferred first.",
    )
    grammar_fix_targets: int | None = Field(
        DEFAULT_PLATE_GRAMMAR.fix_targets,
        ge=0,
        description="With plates.format=custom: how many leading patterns confusable fixes may target.",
    )
    off_format_confidence: float | None = Field(
        None,
        ge=0,
        le=1,
        description="A read that fits no pattern of the format is dropped (unset), or kept "
        "when its mean character confidence is at least this, flagged low_confidence.",
    )
    min_confidence: float = Field(0.5, ge=0, le=1, description="Reads below are dropped.")
    detect_side_px: int = Field(
        480,
        ge=160,
        le=1280,
        description="Small regions are upscaled (at most 8x) until their long "
        "side reaches this before text detection. 640 finds more 40-60 px plates (see "
        "docs/performance.md) at about twice the detection cost.",
    )
    detect_max_side_px: int | None = Field(
        None,
        ge=160,
        le=1280,
        description="Inputs to text detection whose long side is larger (the whole "
        "frame, a large region) are downscaled to this first; unset: detected at their "
        "own size (a 1280x720 frame at 1280 px).",
    )
    text_gate_contrast: int = Field(
        48,
        ge=0,
        le=255,
        description="A cheap test before text detection (tasks/index/plate_cost.py): a "
        "moving region is read only if it holds a band of vertical strokes at least "
        "text_gate_min_px wide, wider than tall, that differ from their background by at "
        "least this many grey levels (a line of glyphs); 0: every region is read. "
        "48 skips ~27% of the sample's text detections and no plate benchmarks/plates.py "
        "reads (docs/performance.md); 64 and up miss blurred 40-60 px plates.",
    )
    text_gate_min_px: int = Field(
        24,
        ge=8,
        description="The narrowest line of plate glyphs (px) the text gate looks for.",
    )
    detect_in_bands: bool = Field(
        True,
        description="Run text detection only on windows round the text gate's stroke bands "
        "(each grown by its height above/below and 3x its height left/right), not on the whole "
        "moving region (needs text_gate_contrast > 0): sample detection CPU -27 %, same reads; "
        "benchmarks/plate_text.py recall same or better, precision 96.7-96.8 % (docs/performance.md).",
    )
    first_frame_waits: bool = Field(
        True,
        description="A segment's first sampled frame has no motion mask yet: its plates are "
        "read once the next frame's mask shows what moved (the difference covers both frames), "
        "inside that frame's moving regions, rather than across the whole still frame, where "
        "shop signs and parked cars pass the plate gate's motion test by default.",
    )
    skip_overlay_bands: bool = Field(
        True,
        description="With detect_in_bands: stroke bands centred in the camera's overlay_regions "
        "(the burned-in clock and name) get no text detection; their reads were dropped "
        "anyway. false: detected and dropped, as before.",
    )
    region_min_px: int = Field(
        96,
        ge=0,
        description="Moving regions narrower or lower than this (frame px) are "
        "not read for plates: a car with a 40 px plate is ~140 px wide.",
    )
    region_max_aspect: float = Field(
        1.6,
        ge=0,
        description="Moving regions taller than this x their width (walking "
        "people) are not read for plates; 0 reads every moving region. Regions holding "
        "the sample's plates reach 1.57.",
    )
    settled_confidence: float = Field(
        0.9,
        ge=0,
        le=1,
        description="A plate track whose last two reads agree with every "
        "character at least this sure is settled: its region is re-read only every "
        "settled_reread_s.",
    )
    settled_reread_s: float = Field(
        1.6,
        ge=0,
        description="A moving region that holds a settled plate track (at its "
        "predicted place) is skipped while the track's last read would be at most this "
        "old at the next frame (every third frame at 2 fps); 0 reads every region of "
        "every moving frame. Capped at 0.85 x tracking.max_gap_s, so the track goes on.",
    )
    settled_follow_s: float = Field(
        3.6,
        ge=0,
        description="0: off. Above 0 (with settled_reread_s above 0): a settled plate track "
        "not read in a frame is followed (carried to its predicted place while a moving "
        "region holds it), so it is re-read only every this many seconds instead of "
        "settled_reread_s, past the tracker's gap; a region that also holds a live plate "
        "not yet settled is read. A pass's last time is then the last frame it was read or "
        "followed. A new plate in a region holding a settled one waits up to this long.",
    )
    full_frame_share: float = Field(
        1.0,
        gt=0,
        description="The whole frame is read once instead of its moving regions "
        "when reading those (upscaled to detect_side_px) would cost at least this "
        "share of reading the frame.",
    )
    low_confidence: float = Field(
        0.8, ge=0, le=1, description="A voted character under this flags the plate low-confidence."
    )
    gate_enabled: bool = Field(
        True,
        description="Keep only text lines that look like a plate (citywatch/plate_gate.py): "
        "signs, badges, dealer frames and slogans are counted in the segment's "
        "plates_rejected_text and never become plate rows. false: every read that fits the "
        "format is kept (its gate_score is still stored; the watchlist sweep still applies "
        "the rule).",
    )
    gate_max_open_sides: int = Field(
        0,
        ge=0,
        le=4,
        description="A plate's background panel stops within gate_probe text heights of its "
        "text; a line whose background reaches further on more sides than this (a sign "
        "board, a wall, a car body under a badge) is not a plate.",
    )
    gate_plate_width: float = Field(
        7.5,
        gt=0,
        description="The widest plate in text heights (HK 520 mm for 76 mm characters: 6.8): "
        "a short mark's panel is looked for this far sideways.",
    )
    gate_probe: float = Field(
        0.8,
        gt=0,
        description="How far (in text heights) around a text line its plate panel is looked "
        "for (gate_max_open_sides).",
    )
    gate_min_contrast: float = Field(
        0.18,
        ge=0,
        le=1,
        description="Ink against background of a plate line, as a share of 0-255: plates are "
        "black on white or yellow.",
    )
    gate_min_char_aspect: float = Field(
        0.3,
        ge=0,
        description="A plate line's width per character, in text heights, is at least this.",
    )
    gate_max_char_aspect: float = Field(
        0.8,
        ge=0,
        description="... and at most this (wide display lettering is not a plate font).",
    )
    gate_max_region_share: float = Field(
        0.15,
        gt=0,
        description="A plate line is at most this share of the height of the vehicle-sized "
        "moving region it is in (a sign that moves as a whole fills its region).",
    )
    gate_min_moving_share: float = Field(
        0.35,
        ge=0,
        le=1,
        description="At least this share of a plate line's box moved since the previous "
        "sampled frame (the motion gate's mask): a sign behind a passing car does not. 0: "
        "no motion test.",
    )
    gate_min_moving_around: float = Field(
        0.5,
        ge=0,
        le=1,
        description="... and at least this share of the box grown by a text height each way "
        "(a plate's vehicle moves round it; a sign crossed by a car's edge moves in part).",
    )
    gate_caption_ratio: float = Field(
        1.3,
        gt=1,
        description="A text line just above or below one at least this many times taller "
        "is its caption (a dealer frame's name, a state name, a slogan), not a plate.",
    )
    gate_min_score: float = Field(
        1.0,
        ge=0,
        le=1,
        description="The share of the gate's checks a plate row must have passed for the "
        "watchlist sweep to alert on it (rows store it as gate_score).",
    )

    @model_validator(mode="after")
    def _grammar_compiles(self) -> PlatesSettings:
        try:
            PlateGrammar(self.grammar, self.grammar_fix_targets)
            self.plate_grammar()
        except BadInputError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def gate_thresholds(self) -> GateThresholds:
        """The plate acceptance rule's thresholds (citywatch/plate_gate.py)."""
        from citywatch.plate_gate import GateThresholds  # OpenCV: only where plates are read

        return GateThresholds(
            max_open_sides=self.gate_max_open_sides,
            probe=self.gate_probe,
            plate_width=self.gate_plate_width,
            min_contrast=self.gate_min_contrast,
            min_char_aspect=self.gate_min_char_aspect,
            max_char_aspect=self.gate_max_char_aspect,
            max_region_share=self.gate_max_region_share,
            min_moving_share=self.gate_min_moving_share,
            min_moving_around=self.gate_min_moving_around,
            caption_ratio=self.gate_caption_ratio,
            min_score=self.gate_min_score,
        )

    def plate_grammar(self) -> PlateGrammar:
        """The one plate grammar: reads, searches and watchlist entries are checked against it."""
        if self.format == CUSTOM:
            return PlateGrammar(self.grammar, self.grammar_fix_targets)
        custom = (self.grammar, self.grammar_fix_targets) != (
            DEFAULT_PLATE_GRAMMAR.patterns,
            DEFAULT_PLATE_GRAMMAR.fix_targets,
        )
        if custom:
            raise BadInputError(
                f"plates.grammar is set but plates.format is {self.format!r}: set "
                "plates.format=custom to use your own patterns, or unset plates.grammar"
            )
        return preset(self.format).grammar()
