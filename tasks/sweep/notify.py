"""Delivering alerts to sinks: the log, Prefect (event + table artifact), webhooks.

Every (alert, sink) pair is a row in ``deliveries``. A sweep *claims* the deliveries
that are due (a conditional write that only one concurrent sweep can win per
attempt), sends them, and records the outcome; failures are retried by later sweeps
with exponential backoff. Webhook POSTs run on a thread pool with a short timeout,
after the alerts and the watermark are committed, so a slow or dead receiver never
holds up an alert. Delivery is at least once: receivers deduplicate on the alert id
(the ``Idempotency-Key`` header and the ``id`` field) or the ``webhook-id`` header.
Webhooks go to targets an admin configured (``webhook:<name>``), signed with each
target's secret (:mod:`citywatch.tasks.webhooks`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from prefect import task
from prefect.cache_policies import NO_CACHE

from citywatch.filters import all_of, compare, eq, is_in, is_not_null, ne
from citywatch.governance.alerts import AlertState, DeliveryState, alerts_by_id, deliveries_table
from citywatch.governance.webhooks import WebhookTargetRow, list_targets
from citywatch.schemas import AlertRow, DeliveryRow, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table, upsert
from citywatch.tasks.webhooks import post_signed

log = logging.getLogger("citywatch.governance.alerts")

LOG_SINK = "log"
PREFECT_SINK = "prefect"
WEBHOOK_PREFIX = "webhook:"
CLAIM_LEASE = dt.timedelta(seconds=60)  # a claim left by a crashed sweep is retried after this
MAX_PER_SWEEP = 500
MAX_ERROR_CHARS = 300


def configured_sinks(storage: Storage) -> list[str]:
    """The log, Prefect, and every webhook target by name (never its URL or secret)."""
    return [LOG_SINK, PREFECT_SINK, *(WEBHOOK_PREFIX + t.id for t in list_targets(storage))]


def retry_delay(attempts: int, settings: Settings) -> dt.timedelta:
    """Delay after the ``attempts``-th failed attempt: base, 2*base, 4*base ... capped."""
    seconds = settings.alerts.retry_base_s * (2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=min(seconds, settings.alerts.retry_max_s))


def alert_json(alert: AlertRow) -> dict[str, object]:
    """What a receiver gets: references and scores, never an embedding."""
    return {
        "id": alert.id,
        "watchlist_id": alert.watchlist_id,
        "kind": alert.kind,
        "label": alert.label,
        "reason": alert.reason,
        "case_id": alert.case_id,
        "camera_id": alert.camera_id,
        "ts": alert.ts.isoformat(),
        "track_id": alert.track_id,
        "track_start": alert.track_start.isoformat(),
        "track_end": alert.track_end.isoformat(),
        "score": alert.score,
        "threshold": alert.threshold,
        "plate_text": alert.plate_text,
        "thumb_uri": alert.thumb_uri,
        "lat": alert.lat,
        "lon": alert.lon,
        "model": alert.model,
        "created_at": alert.created_at.isoformat(),
        "notice": "A possible match, not an identification: a person must confirm it "
        "before anyone acts on it.",
    }


# --- claiming ---------------------------------------------------------------------------


def due_deliveries(
    storage: Storage, settings: Settings, sinks: Sequence[str], now: dt.datetime, limit: int = MAX_PER_SWEEP
) -> list[DeliveryRow]:
    if not sinks or not has_table(storage.db, DeliveryRow.TABLE):
        return []
    where = all_of(
        ne("state", DeliveryState.DELIVERED.value),
        is_not_null("next_attempt_at"),
        compare("next_attempt_at", "<=", now),
        compare("attempts", "<", int(settings.alerts.delivery_max_attempts)),
        is_in("sink", sinks),
    )
    query = deliveries_table(storage.db).search().where(where).limit(limit)
    return sorted(arrow_to_rows(query.to_arrow(), DeliveryRow), key=lambda d: d.created_at)


def claim(storage: Storage, due: Sequence[DeliveryRow], token: str, now: dt.datetime) -> list[DeliveryRow]:
    """Take the next attempt of each delivery; returns those this caller won.

    The write applies only where ``attempts`` is still what we read, and the table is
    keyed, so of two sweeps claiming at once exactly one moves each row forward.
    """
    if not due:
        return []
    claimed = [
        replace(
            d,
            state=DeliveryState.SENDING.value,
            attempts=d.attempts + 1,
            claim=token,
            next_attempt_at=now + CLAIM_LEASE,
            updated_at=now,
        )
        for d in due
    ]
    (
        deliveries_table(storage.db)
        .merge_insert("id")
        .when_matched_update_all(
            where=all_of(
                "target.attempts = source.attempts - 1", ne("target.state", DeliveryState.DELIVERED.value)
            )
        )
        .execute(rows_to_arrow(claimed, DeliveryRow.SCHEMA))
    )
    mine = (
        deliveries_table(storage.db)
        .search()
        .where(all_of(is_in("id", [d.id for d in claimed]), eq("claim", token)))
        .limit(None)
        .to_arrow()
    )
    won = {row.id: row for row in arrow_to_rows(mine, DeliveryRow)}
    return [d for d in claimed if d.id in won and won[d.id].attempts == d.attempts]


# --- sinks ------------------------------------------------------------------------------


def post_webhook(
    target: WebhookTargetRow | None, delivery: DeliveryRow, alert: AlertRow, settings: Settings
) -> str:
    """POST the alert, signed, to its target; '' on a 2xx answer, else the reason."""
    if target is None:
        return "webhook target was removed: not sent"
    return post_signed(target, settings, delivery.id, alert_json(alert), alert.id)


def log_alert(alert: AlertRow) -> str:
    log.warning(
        "ALERT %s: %s (%s, case %s) on camera %s at %s, distance %.3f (threshold %.3f) -- needs review",
        alert.id,
        alert.label,
        alert.reason,
        alert.case_id,
        alert.camera_id,
        alert.ts.isoformat(),
        alert.score,
        alert.threshold,
    )
    return ""


def in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def publish_to_prefect(alerts: Sequence[AlertRow]) -> str:
    """One ``citywatch.alert.raised`` event per alert and one table artifact per batch."""
    from prefect.artifacts import create_table_artifact
    from prefect.events import emit_event

    try:
        _publish(alerts, create_table_artifact, emit_event)
    except Exception as exc:  # noqa: BLE001 - any API failure is recorded on the delivery and retried
        return f"{type(exc).__name__}: {exc}"
    return ""


def _publish(
    alerts: Sequence[AlertRow],
    create_table_artifact: Callable[..., object],
    emit_event: Callable[..., object],
) -> None:
    """Publish with Prefect's ``create_table_artifact`` and ``emit_event`` (imported lazily)."""
    for alert in alerts:
        emit_event(
            event="citywatch.alert.raised",
            resource={
                "prefect.resource.id": f"citywatch.alert.{alert.id}",
                "prefect.resource.name": alert.label,
            },
            related=[
                {
                    "prefect.resource.id": f"citywatch.camera.{alert.camera_id}",
                    "prefect.resource.role": "camera",
                }
            ],
            payload=alert_json(alert),
        )
    create_table_artifact(
        table=[{k: v for k, v in alert_json(a).items() if k != "notice"} for a in alerts],
        key="watchlist-alerts",
        description=f"{len(alerts)} new watchlist alert(s): possible matches that a person "
        "must confirm or dismiss (`citywatch alerts list`).",
    )


# --- one delivery round -----------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int
    delivered: int
    failed: int
    errors: list[tuple[str, str]]  # (sink, error)


def _outcome(delivery: DeliveryRow, error: str, settings: Settings, now: dt.datetime) -> DeliveryRow:
    if not error:
        return replace(
            delivery,
            state=DeliveryState.DELIVERED.value,
            last_error="",
            next_attempt_at=None,
            delivered_at=now,
            updated_at=now,
        )
    exhausted = delivery.attempts >= settings.alerts.delivery_max_attempts
    return replace(
        delivery,
        state=DeliveryState.FAILED.value,
        last_error=error[:MAX_ERROR_CHARS],
        next_attempt_at=None if exhausted else now + retry_delay(delivery.attempts, settings),
        updated_at=now,
    )


def deliver_pending(storage: Storage, settings: Settings, now: dt.datetime | None = None) -> DeliveryReport:
    """Claim due deliveries, send them, record each outcome."""
    now = now or utcnow()
    sinks = configured_sinks(storage)
    if not in_prefect_run():  # the next sweep run in Prefect publishes these
        sinks = [s for s in sinks if s != PREFECT_SINK]
    owned = claim(storage, due_deliveries(storage, settings, sinks, now), uuid.uuid4().hex, now)
    if not owned:
        return DeliveryReport(0, 0, 0, [])
    alerts = alerts_by_id(storage, [d.alert_id for d in owned])
    errors: dict[str, str] = {}
    live = [d for d in owned if d.alert_id in alerts and alerts[d.alert_id].state != AlertState.DISMISSED]
    # dismissed, or written by a sweep that crashed before its alert: not sent, not retried
    skipped = {d.id for d in owned} - {d.id for d in live}
    errors.update({d_id: "alert dismissed or missing: not sent" for d_id in skipped})
    hooks = [d for d in live if d.sink.startswith(WEBHOOK_PREFIX)]
    targets = {t.id: t for t in list_targets(storage)} if hooks else {}
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(hooks)))) as pool:
        # webhooks first, in parallel: the Prefect API calls below do not delay them
        posted = pool.map(
            lambda d: post_webhook(
                targets.get(d.sink[len(WEBHOOK_PREFIX) :]), d, alerts[d.alert_id], settings
            ),
            hooks,
        )
        for d in live:
            if d.sink == LOG_SINK:
                errors[d.id] = log_alert(alerts[d.alert_id])
        to_prefect = [d for d in live if d.sink == PREFECT_SINK]
        if to_prefect:
            error = publish_to_prefect([alerts[d.alert_id] for d in to_prefect])
            errors.update({d.id: error for d in to_prefect})
        errors.update({d.id: err for d, err in zip(hooks, posted, strict=True)})
    done = utcnow()
    outcomes = [_outcome(d, errors.get(d.id, ""), settings, done) for d in owned]
    outcomes = [replace(o, next_attempt_at=None) if o.id in skipped else o for o in outcomes]
    upsert(deliveries_table(storage.db), rows_to_arrow(outcomes, DeliveryRow.SCHEMA))
    failed = [(o.sink, o.last_error) for o in outcomes if o.state == DeliveryState.FAILED]
    for sink, error in failed:
        log.warning("alert delivery to %s failed: %s (will retry with backoff)", sink, error)
    return DeliveryReport(len(owned), len(outcomes) - len(failed), len(failed), failed)


@task(name="deliver-alerts", cache_policy=NO_CACHE)
def deliver_task(settings: Settings) -> DeliveryReport:
    """Task shim: one delivery round (no task retries: failures are retried per delivery)."""
    return deliver_pending(Storage(settings), settings)
