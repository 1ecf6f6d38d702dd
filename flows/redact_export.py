"""Deployment ``redact-export``: a redacted, signed evidence clip for a case.

resolve the request (sighting / alert / camera + range, optional probe) -> plan the
clip (segments, gaps) -> scan every frame for faces (and plates) -> redact + encode
-> manifest, signed (Ed25519) here in the flow's process (the private key never
travels to a worker) -> ``<root>/exports/<case>/<export_id>.{mp4,redactions.json,manifest.json}``.
The source segments are held for the case as soon as the clip is planned, so
retention cannot delete them (the hold is audited).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from citywatch.errors import BadInputError, TransientError
from citywatch.footage import format_stamp
from citywatch.governance.auth import Action, GovernedRun, governed
from citywatch.governance.manifest import MANIFEST_SUFFIX, export_signer, render_manifest, sign, signer_entry
from citywatch.governance.refusals import refusals_on_record
from citywatch.models.loaders import redaction_face_model
from citywatch.schemas import utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage, safe_key
from citywatch.tasks.export.clip import ClipPlan, Gap, plan_clip
from citywatch.tasks.export.manifest import build_manifest
from citywatch.tasks.export.redact_plan import SubjectChoice
from citywatch.tasks.export.render import RenderedExport, render_redacted
from citywatch.tasks.export.request import ExportRequest, ResolvedRequest, resolve_request
from citywatch.tasks.export.scan import ClipScan, plate_finder_for, scan_clip
from citywatch.tasks.retention import hold_segments


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    case_id: str
    clip_uri: str
    manifest_uri: str
    redaction_log_uri: str
    clip_sha256: str
    frames: int
    gaps: list[Gap]
    subject: SubjectChoice
    key_id: str


def prepare_export(request: ExportRequest, settings: Settings) -> tuple[ResolvedRequest, ClipPlan]:
    storage = Storage(settings)
    resolved = resolve_request(storage, settings, request, redaction_face_model(settings))
    plan = plan_clip(storage, resolved.camera_id, resolved.start, resolved.end, max_s=settings.export.max_s)
    return resolved, plan


def scan_export(resolved: ResolvedRequest, plan: ClipPlan, settings: Settings) -> ClipScan:
    embeddings = resolved.subject.embeddings if resolved.subject is not None else None
    if embeddings is not None and len(embeddings) == 0:
        embeddings = None
    return scan_clip(Storage(settings), plan, settings, embeddings, plate_finder_for(settings))


def render_export(
    resolved: ResolvedRequest,
    plan: ClipPlan,
    scan: ClipScan,
    settings: Settings,
    key_base: str,
    export_id: str,
) -> RenderedExport:
    return render_redacted(Storage(settings), settings, plan, scan, resolved.subject, key_base, export_id)


def _transient_only(task: object, task_run: object, state: State) -> bool:
    """Retry I/O hiccups only; bad input fails at once."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:  # noqa: BLE001 - any other failure is final
        return False
    return False


prepare_task = task(
    name="export-prepare", retries=2, cache_policy=NO_CACHE, retry_condition_fn=_transient_only
)(prepare_export)
scan_task = task(name="export-scan", retries=1, cache_policy=NO_CACHE, retry_condition_fn=_transient_only)(
    scan_export
)
render_task = task(
    name="export-render", retries=1, cache_policy=NO_CACHE, retry_condition_fn=_transient_only
)(render_export)


@contextmanager
def governed_export(settings: Settings, storage: Storage, request: ExportRequest) -> Iterator[GovernedRun]:
    """Authorize and audit ``Action.EXPORT`` (role, case id, justification)."""
    case_id = request.case_id or ""
    params = {
        "kind": request.kind,
        "sighting": request.sighting_id,
        "alert": request.alert_id,
        "camera": request.camera_id,
        "probe": request.probe,
        "pad_s": request.pad_s,
        "since": request.since.isoformat() if request.since else None,
        "until": request.until.isoformat() if request.until else None,
    }
    with refusals_on_record(settings, storage, Action.EXPORT, case_id, request.justification, params):
        if any(part in ("", ".", "..") for part in case_id.split("/")):
            raise BadInputError(f"case id {case_id!r} must not have empty, '.' or '..' parts")
    with governed(settings, storage, Action.EXPORT, request.case_id, request.justification, params) as run:
        yield run


@flow(name="redact-export")
def redact_export(request: ExportRequest, settings: Settings | None = None) -> ExportResult:
    """Cut, redact, encode, sign and store one evidence export."""
    settings = settings or Settings()
    logger = get_run_logger()
    storage = Storage(settings)
    signer = export_signer(settings)  # fail early if the key is unusable
    with governed_export(settings, storage, request) as run:
        case_id, justification = run.case_id, run.justification
        resolved, plan = prepare_task(request, settings)
        export_id = f"{plan.camera.id}-{format_stamp(plan.start)}-{secrets.token_hex(4)}"
        hold_segments(storage, run, [s.segment_id for s in plan.sources], export_id)
        for gap in plan.gaps:
            logger.warning(
                "gap in footage %s .. %s: %s", gap.start.isoformat(), gap.end.isoformat(), gap.reason
            )
        scan = scan_task(resolved, plan, settings)
        created = utcnow()
        key_base = safe_key(f"exports/{case_id}/{export_id}")
        rendered = render_task(resolved, plan, scan, settings, key_base, export_id)
        manifest = build_manifest(
            export_id=export_id,
            case_id=case_id,
            justification=justification,
            user=run.actor.user,
            created=created,
            resolved=resolved,
            plan=plan,
            scan=scan,
            rendered=rendered,
            settings=settings,
            signer=signer_entry(signer),
        )
        signed = sign(manifest.to_document(), signer)
        manifest_uri = storage.write_bytes(f"{key_base}{MANIFEST_SUFFIX}", render_manifest(signed))
        run.result_count = 1
        run.detail = manifest_uri
    logger.info(
        "export %s: %d frames, subject %s, %d gaps; manifest %s",
        export_id,
        rendered.clip.frames,
        rendered.subject.matched_by,
        len(plan.gaps),
        manifest_uri,
    )
    return ExportResult(
        export_id,
        case_id,
        rendered.clip.uri,
        manifest_uri,
        rendered.log.uri,
        rendered.clip.sha256,
        rendered.clip.frames,
        list(plan.gaps),
        rendered.subject,
        signer.key_id,
    )
