"""The one settings object. Read once at the edge (CLI, flow entry) and passed down.

Settings come in sections (``settings.faces``, ``settings.plates``, ...); each field can
be set from the environment as ``CITYWATCH_<SECTION>__<FIELD>``, e.g.
``CITYWATCH_STORAGE__ROOT=s3://bucket/city`` or ``CITYWATCH_FACES__MATCH_THRESHOLD=0.5``;
the acting user and the service URL are ``CITYWATCH_USER`` and ``CITYWATCH_API_URL``.
An unknown ``CITYWATCH_*`` variable (a typo, an old flat name) is refused. Nothing else
in citywatch reads ``os.environ``.

In code, a section field is given as ``section__field`` (the variable's spelling):
``Settings(storage__root="/data", faces__min_px=32)`` or
``settings.updated(plates__enabled=False)``.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from citywatch.settings.console_sections import MapSettings, PlaySettings
from citywatch.settings.governance_sections import (
    AlertsSettings,
    AuditSettings,
    AuthSettings,
    CoappearSettings,
    ExportSettings,
    OidcSettings,
    RedactSettings,
    SweepSettings,
    WatchlistSettings,
)
from citywatch.settings.plate_sections import PlatesSettings
from citywatch.settings.renames import RENAMED
from citywatch.settings.sections import (
    DaskSettings,
    DecodeSettings,
    FacesSettings,
    IndexSettings,
    OpsSettings,
    RetentionSettings,
    S3Settings,
    SearchSettings,
    ServiceSettings,
    StorageSettings,
    TrackingSettings,
)

ENV_PREFIX = "CITYWATCH_"
DELIMITER = "__"
# CITYWATCH_* variables that are not settings, read where they are used: the CLI's API
# token (citywatch/cli/client.py), webhook secrets (citywatch/governance/webhooks.py) and
# the browser tests' screenshot folder (tests/browser.py) and the console tests' reusable
# indexed sample (tests/test_console_browser.py, a development shortcut).
OTHER_VARIABLES = frozenset(
    {"CITYWATCH_API_TOKEN", "CITYWATCH_WEBHOOK_SECRETS", "CITYWATCH_SCREENSHOTS", "CITYWATCH_CONSOLE_SAMPLE"}
)


class Settings(BaseSettings):
    """All configuration of a citywatch deployment, one section per component."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=DELIMITER,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    user: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The acting user (CITYWATCH_USER; the CLI's --user overrides it). "
        "Must be listed in the users file. No default: guarded actions refuse to run "
        "without a named user.",
    )
    api_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        max_length=500,
        description="Base URL of a citywatch service (e.g. http://127.0.0.1:8470). Set: the CLI is "
        "a client and governed commands go through the service with an API token "
        "(CITYWATCH_API_TOKEN or the file `citywatch login` writes).",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings, description="Where data lives.")
    s3: S3Settings = Field(default_factory=S3Settings, description="Object storage access.")
    decode: DecodeSettings = Field(default_factory=DecodeSettings, description="Decoding and motion gating.")
    faces: FacesSettings = Field(default_factory=FacesSettings, description="Face detection and search.")
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="Face and plate tracks.")
    plates: PlatesSettings = Field(default_factory=PlatesSettings, description="Licence plate reading.")
    dask: DaskSettings = Field(default_factory=DaskSettings, description="Compute cluster.")
    index: IndexSettings = Field(default_factory=IndexSettings, description="Indexing runs.")
    coappear: CoappearSettings = Field(
        default_factory=CoappearSettings, description="Co-appearance and recurring faces."
    )
    ops: OpsSettings = Field(default_factory=OpsSettings, description="Operations and automations.")
    retention: RetentionSettings = Field(default_factory=RetentionSettings, description="Deletion.")
    search: SearchSettings = Field(default_factory=SearchSettings, description="Searches.")
    service: ServiceSettings = Field(default_factory=ServiceSettings, description="`citywatch serve`.")
    play: PlaySettings = Field(default_factory=PlaySettings, description="The console's player.")
    map: MapSettings = Field(default_factory=MapSettings, description="The console's maps.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Sign-in and sessions.")
    oidc: OidcSettings = Field(default_factory=OidcSettings, description="OIDC sign-in.")
    redact: RedactSettings = Field(default_factory=RedactSettings, description="Redacted exports.")
    export: ExportSettings = Field(default_factory=ExportSettings, description="Evidence export.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="Audit checkpoints.")
    watchlist: WatchlistSettings = Field(default_factory=WatchlistSettings, description="Watchlist entries.")
    sweep: SweepSettings = Field(default_factory=SweepSettings, description="Watchlist sweeps.")
    alerts: AlertsSettings = Field(default_factory=AlertsSettings, description="Alert delivery.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _KnownVariables(settings_cls),
            env_settings,
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="before")
    @classmethod
    def _nest_keywords(cls, data: Any) -> Any:
        """``faces__min_px=32`` -> ``faces={"min_px": 32}``, merged over the section's other values."""
        if not isinstance(data, dict):
            return data
        return nest(data)

    def updated(self, **changes: object) -> Settings:
        """A copy with ``changes`` (``user=``, ``section__field=`` or ``section={...}``), validated.

        The environment is not read again: only the given values change.
        """
        data = self.model_dump()
        for key, value in nest(changes).items():
            current = data.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                data[key] = {**current, **value}
            else:
                data[key] = value
        return type(self).model_validate(data)


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Fold ``section__field`` keys into section dicts; refuse old flat names with their new one."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if key in RENAMED:
            section, field = RENAMED[key].split(".")
            raise ValueError(
                f"setting {key!r} is now {section}.{field} (keyword {section}{DELIMITER}{field}=)"
            )
        if DELIMITER not in key:
            current = nested.get(key)
            if isinstance(current, dict) and isinstance(value, BaseModel):
                value = {**value.model_dump(exclude_unset=True), **current}
            elif isinstance(current, dict) and isinstance(value, dict):
                value = {**value, **current}
            nested[key] = value
            continue
        section, field = key.split(DELIMITER, 1)
        current = nested.get(section)
        if isinstance(current, BaseModel):
            current = current.model_dump(exclude_unset=True)
        elif not isinstance(current, dict):
            current = {}
        nested[section] = {**current, field: value}
    return nested


def setting_fields() -> dict[str, FieldInfo]:
    """Every setting by dotted name (``user``, ``faces.min_px``, ...), in model order."""
    fields: dict[str, FieldInfo] = {}
    for name, info in Settings.model_fields.items():
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            fields.update({f"{name}.{field}": sub for field, sub in section.model_fields.items()})
        else:
            fields[name] = info
    return fields


def variable(dotted: str) -> str:
    """The environment variable of a dotted setting (``faces.min_px`` -> ``CITYWATCH_FACES__MIN_PX``)."""
    return (ENV_PREFIX + dotted.replace(".", DELIMITER)).upper()


def value_at(settings: Settings, dotted: str) -> object:
    """The value of a dotted setting (``faces.min_px``)."""
    value: object = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def variable_names() -> dict[str, str]:
    """Every settings variable -> its dotted field (``CITYWATCH_FACES__MIN_PX`` -> ``faces.min_px``);
    a whole section may be given as JSON (``CITYWATCH_FACES``)."""
    names = {variable(name): name for name in setting_fields()}
    names.update({variable(name): name for name in Settings.model_fields})
    return names


def old_variable_hint(name: str) -> str | None:
    """The new variable of an old flat one (``CITYWATCH_FACE_MIN_PX`` -> ``CITYWATCH_FACES__MIN_PX``)."""
    old = name.upper().removeprefix(ENV_PREFIX).lower()
    if old not in RENAMED:
        return None
    return f"{ENV_PREFIX}{RENAMED[old].replace('.', DELIMITER)}".upper()


def unknown_variable_problem(name: str) -> str:
    """Why ``name`` is refused, with the variable that was probably meant."""
    new = old_variable_hint(name)
    if new:
        return f"environment variable {name} is an old setting name: it is now {new}"
    known = [known.removeprefix(ENV_PREFIX) for known in variable_names()]
    close = difflib.get_close_matches(name.upper().removeprefix(ENV_PREFIX), known, n=1, cutoff=0.75)
    hint = f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else " (see the settings table in README.md)"
    return f"environment variable {name} is not a citywatch setting{hint}"


class _KnownVariables(PydanticBaseSettingsSource):
    """Adds nothing; refuses any ``CITYWATCH_*`` variable that is not a setting."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        known = variable_names().keys() | OTHER_VARIABLES
        unknown = sorted(
            name for name in os.environ if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
        )
        if unknown:
            raise ValidationError.from_exception_data(
                "Settings",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("unknown_setting", unknown_variable_problem(name)),
                        loc=(),
                        input=name,
                    )
                    for name in unknown
                ],
            )
        return {}
