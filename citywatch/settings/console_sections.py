"""The sections of :class:`citywatch.settings.Settings` for the investigator console: its
player (``play``) and its maps (``map``). Set as ``CITYWATCH_PLAY__LEAD_S``, ``CITYWATCH_MAP__TILES_URL``."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from citywatch.settings.sections import Section


class PlaySettings(Section):
    """Playing a sighting in the console (citywatch/service/pages/routes_play.py)."""

    lead_s: float = Field(
        3.0, ge=0, le=60, description="The console's player starts this many seconds before the sighting."
    )
    before_s: float = Field(
        5.0,
        ge=0,
        le=120,
        description="The clip played for a sighting starts this many seconds before it "
        "(at least lead_s; the user can scrub back to it).",
    )
    after_s: float = Field(
        10.0, gt=0, le=300, description="The clip played for a sighting ends this many seconds after it."
    )
    crf: int = Field(
        23,
        ge=0,
        le=51,
        description="x264 quality of the player's clips (lower is better; exports use export.crf).",
    )
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = Field(
        "ultrafast",
        description="x264 preset of the player's clips: the clip is rendered when a sighting is "
        "first clicked, so speed comes first (exports use export.preset).",
    )
    cache_bytes: int = Field(
        256 * 1024 * 1024,
        ge=0,
        description="Clips rendered for the player are kept in the service's memory up to "
        "this many bytes (least recently played dropped first; never in storage).",
    )

    @model_validator(mode="after")
    def _lead_inside(self) -> PlaySettings:
        if self.lead_s > self.before_s:
            raise ValueError(
                f"play lead_s ({self.lead_s}) must not exceed play before_s ({self.before_s}): "
                "the player cannot start before the clip"
            )
        return self


class MapSettings(Section):
    """The console's maps (cameras, sightings, a search radius)."""

    tiles_url: str = Field(
        "",
        description="An operator's map tile server, e.g. https://tiles.city.example/{z}/{x}/{y}.png "
        "({z}/{x}/{y}: zoom, column, row of 256 px Web Mercator tiles). Empty: maps are drawn on "
        "plain coordinates and no tile is fetched from anywhere. When set, browsers load tiles "
        "from this host only (the pages' Content-Security-Policy allows it for images).",
    )

    @field_validator("tiles_url")
    @classmethod
    def _tiles_url(cls, value: str) -> str:
        value = value.strip()
        if value and not _TILES_URL.fullmatch(value):
            raise ValueError(
                f"map tiles_url {value[:200]!r} must be an http(s) URL naming a host, with {{z}}, {{x}} "
                "and {y} in its path, and no credentials, query quotes or spaces "
                "(e.g. https://tiles.city.example/{z}/{x}/{y}.png)"
            )
        if value and not all(part in value for part in ("{z}", "{x}", "{y}")):
            raise ValueError(f"map tiles_url {value[:200]!r} must hold {{z}}, {{x}} and {{y}}")
        return value

    @property
    def tiles_origin(self) -> str:
        """``scheme://host[:port]`` of the tile server ("" when none is configured)."""
        match = _TILES_URL.fullmatch(self.tiles_url)
        return match.group("origin") if match else ""


_TILES_URL = re.compile(
    r"(?P<origin>https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?)"
    r"/[A-Za-z0-9._~{}/%@!$&()*+,=:-]*"
)
