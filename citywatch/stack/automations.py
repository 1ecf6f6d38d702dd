"""The Prefect automations ``citywatch up`` creates: tell someone when things stop working.

Three automations, built from settings (so they change with them):

* ``citywatch: index run failed``: an ``index-footage``, ``index-segments`` or
  ``ingest-new`` flow run failed or crashed (``prefect.flow-run.Failed`` / ``Crashed``);
* ``citywatch: lag exceeded``: an index run found a camera whose newest footage is more
  than ``lag_alert_s`` ahead of its newest indexed segment (the run emits
  ``citywatch.index.lag-exceeded``, tasks/index/report_artifact.py);
* ``citywatch: sweep stopped``: no ``watchlist-sweep`` run completed for
  ``sweep_stall_s`` (a proactive trigger: it fires on the *absence* of events).

Each sends a notification through a Custom Webhook block (``citywatch-ops``) posting
``{"text": ...}`` to ``ops_notify_url``; without that setting the action does nothing
and the automation's firing shows in the Prefect UI's event feed only. ``up`` replaces
automations of the same name, so re-running it applies changed settings.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import SecretStr

from citywatch.errors import BadInputError
from citywatch.settings import Settings
from citywatch.stack.deploy import prefect_client

if TYPE_CHECKING:
    from prefect.events.actions import ActionTypes
    from prefect.events.schemas.automations import AutomationCore

NOTIFY_BLOCK = "citywatch-ops"
LAG_EVENT = "citywatch.index.lag-exceeded"
INDEX_FLOWS = ("index-footage", "index-segments", "ingest-new")
SWEEP_FLOW = "watchlist-sweep"
TAG = "citywatch"
INDEX_FAILED = "citywatch: index run failed"
LAG_EXCEEDED = "citywatch: lag exceeded"
SWEEP_STOPPED = "citywatch: sweep stopped"


def _flows(names: tuple[str, ...] | str) -> dict[str, str | list[str]]:
    return {
        "prefect.resource.role": "flow",
        "prefect.resource.name": list(names) if isinstance(names, tuple) else names,
    }


def automations(settings: Settings, notify_block: UUID | None) -> list[AutomationCore]:
    """The three automations for ``settings`` (notifying through ``notify_block`` if given)."""
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    def act(subject: str, body: str) -> list[ActionTypes]:
        from prefect.events.actions import DoNothing, SendNotification

        if notify_block is None:
            return [DoNothing()]
        return [SendNotification(block_document_id=notify_block, subject=subject, body=body)]

    return [
        AutomationCore(
            name=INDEX_FAILED,
            description="An index flow run failed or crashed: see its logs and `citywatch status`.",
            tags=[TAG],
            trigger=EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match_related=_flows(INDEX_FLOWS),
                posture=Posture.Reactive,
                threshold=1,
                within=dt.timedelta(0),
            ),
            actions=act(
                "citywatch: index run failed",
                "Index flow run {{ flow_run.name }} ({{ flow.name }}) ended {{ flow_run.state.name }}: "
                "{{ flow_run.state.message }}",
            ),
        ),
        AutomationCore(
            name=LAG_EXCEEDED,
            description=f"An index run found a camera more than {settings.ops.lag_alert_s:g} s behind.",
            tags=[TAG],
            trigger=EventTrigger(
                expect={LAG_EVENT}, posture=Posture.Reactive, threshold=1, within=dt.timedelta(0)
            ),
            actions=act(
                "citywatch: indexing lags",
                "Indexing lags: {{ event.payload.max_lag_s }} s on camera {{ event.payload.camera }} "
                f"(limit {settings.ops.lag_alert_s:g} s); backlog {{{{ event.payload.backlog }}}} segments.",
            ),
        ),
        AutomationCore(
            name=SWEEP_STOPPED,
            description=f"No watchlist sweep completed for {settings.ops.sweep_stall_s:g} s: "
            "alerts are not raised.",
            tags=[TAG],
            trigger=EventTrigger(
                expect={"prefect.flow-run.Completed"},
                match_related=_flows(SWEEP_FLOW),
                posture=Posture.Proactive,
                threshold=1,
                within=dt.timedelta(seconds=settings.ops.sweep_stall_s),
            ),
            actions=act(
                "citywatch: watchlist sweep stopped",
                f"No watchlist-sweep run completed in the last {settings.ops.sweep_stall_s:g} s: "
                "watchlist alerts are not being raised.",
            ),
        ),
    ]


def notify_block(api: str, url: SecretStr) -> UUID:
    """Save the ``citywatch-ops`` Custom Webhook block for ``url``; returns its id.

    The URL is kept among the block's secret values (Prefect shows it masked), since
    Slack-style webhook URLs carry their token.
    """
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if not re.fullmatch(r"https?://[^\s]{1,500}", url.get_secret_value()):
        raise BadInputError("ops_notify_url (CITYWATCH_OPS__NOTIFY_URL) must be an http:// or https:// URL")
    block = CustomWebhookNotificationBlock(
        name=NOTIFY_BLOCK,
        url="{{ops_url}}",
        json_data={"text": "{{subject}}: {{body}}", "subject": "{{subject}}"},
        secrets={"ops_url": url.get_secret_value()},
    )
    with temporary_settings(updates={PREFECT_API_URL: api}):
        block_id = block.save(NOTIFY_BLOCK, overwrite=True)
    return UUID(str(block_id))


def ensure_automations(api: str, settings: Settings) -> list[str]:
    """Create (or replace, by name) the automations on the Prefect server at ``api``."""
    block = notify_block(api, settings.ops.notify_url) if settings.ops.notify_url else None
    names = []
    with prefect_client(api) as client:
        for automation in automations(settings, block):
            for old in client.read_automations_by_name(automation.name):
                client.delete_automation(old.id)
            client.create_automation(automation)
            names.append(automation.name)
    return names
