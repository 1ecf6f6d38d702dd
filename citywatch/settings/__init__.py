"""The one settings object, in sections (see :mod:`citywatch.settings.model`)."""

from citywatch.settings.console_sections import MapSettings
from citywatch.settings.governance_sections import (
    AlertsSettings,
    AuditSettings,
    AuthSettings,
    ExportSettings,
    RedactSettings,
    SweepSettings,
    WatchlistSettings,
)
from citywatch.settings.model import (
    Settings,
    setting_fields,
    unknown_variable_problem,
    value_at,
    variable,
    variable_names,
)
from citywatch.settings.plate_sections import PlatesSettings
from citywatch.settings.sections import (
    DaskSettings,
    DecodeSettings,
    FacesSettings,
    IndexSettings,
    RetentionSettings,
    S3Settings,
    SearchSettings,
    ServiceSettings,
    StorageSettings,
    TrackingSettings,
)

__all__ = [
    "AlertsSettings",
    "AuditSettings",
    "AuthSettings",
    "DaskSettings",
    "DecodeSettings",
    "ExportSettings",
    "FacesSettings",
    "IndexSettings",
    "MapSettings",
    "PlatesSettings",
    "RedactSettings",
    "RetentionSettings",
    "S3Settings",
    "SearchSettings",
    "ServiceSettings",
    "Settings",
    "StorageSettings",
    "SweepSettings",
    "TrackingSettings",
    "WatchlistSettings",
    "setting_fields",
    "unknown_variable_problem",
    "value_at",
    "variable",
    "variable_names",
]
