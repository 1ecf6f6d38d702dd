"""Request bodies: pydantic models that refuse bad input before anything runs (422)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CaseId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$", max_length=64)]
Why = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Time = Annotated[str, StringConstraints(max_length=40)]
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,127}$")]
# a faces/plates row or track id: <camera>/<segment stamp>#t<track>[@<offset>]
RowId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:#@-]{0,199}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Login(Strict):
    name: Name
    password: Password
    totp: Annotated[str, StringConstraints(max_length=10)] | None = None


class OidcSubject(Strict):
    subject: Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,255}$")]


class NewToken(Strict):
    label: Short
    days: float = Field(30, gt=0, le=730)
    roles: list[Name] | None = None


class Filters(Strict):
    cameras: list[Id] = Field(default_factory=list, max_length=500)
    district: Short | None = None
    since: Time | None = None
    until: Time | None = None
    top_k: int | None = Field(None, ge=1, le=1000)


class PlateSearch(Filters):
    text: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    max_edits: float = Field(1.0, ge=0, le=3)
    near: Annotated[str, StringConstraints(max_length=80)] | None = None
    case_id: CaseId
    justification: Why


class PlateEntry(Strict):
    plate: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    label: Short
    reason: Short
    expires: Time
    threshold: float | None = Field(None, ge=0, le=3)
    case_id: CaseId
    justification: Why


class Approve(Strict):
    justification: Why


class Note(Strict):
    note: Annotated[str, StringConstraints(max_length=1000)] = ""


class Removal(Strict):
    note: Why


class AuditVerify(Strict):
    anchor: Annotated[str, StringConstraints(max_length=80)] | None = None


class Export(Strict):
    case_id: CaseId
    justification: Why
    alert_id: Id | None = None
    sighting_id: RowId | None = None
    camera_id: Id | None = None
    since: Time | None = None
    until: Time | None = None
    pad_s: float | None = Field(None, ge=0, le=600)


class ExportVerify(Strict):
    manifest: Annotated[str, StringConstraints(pattern=r"^exports/[A-Za-z0-9_./-]{1,300}$")]
    case_id: CaseId
    justification: Why


class Hold(Strict):
    track_id: RowId
    case_id: CaseId
    justification: Why


class NewUser(Strict):
    name: Name
    roles: list[Name] = Field(min_length=1, max_length=4)
    password: Password


class NewPassword(Strict):
    password: Password


Sighting = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Companions(Strict):
    case_id: CaseId
    justification: Why
    sightings: list[Sighting] = Field(default_factory=list, max_length=500)
    window_s: float | None = None  # checked (and a bad one audited) by the governed code


class Recurring(Strict):
    case_id: CaseId
    justification: Why
    cameras: list[Id] = Field(default_factory=list, max_length=1000)
    since: Time
    until: Time
    min_count: int | None = None
    approval: Id | None = None
    request_approval: bool = False


class ApproveScope(Strict):
    case_id: CaseId
    justification: Why


class GroupSearch(Filters):
    sightings: list[Sighting] = Field(min_length=1, max_length=500)
    case_id: CaseId
    justification: Why


class GroupEntry(Strict):
    sightings: list[Sighting] = Field(min_length=1, max_length=500)
    label: Short
    reason: Short
    expires: Time
    threshold: float | None = Field(None, gt=0, le=2)
    case_id: CaseId
    justification: Why
