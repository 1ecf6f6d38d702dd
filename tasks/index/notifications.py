"""Discovery by event: S3 object-created notifications read from an SQS queue.

Where the store sends a notification for every new object (AWS S3 and moto's S3 server
to SQS; MinIO to its own targets, bridged to SQS), an index tick need not list at all:
it reads the queue (``index.notification_queue_url``) and plans exactly the files
named there. The cost of a tick is then the number of new files, not the number of
cameras.

A message is deleted only once every file it names is settled (indexed, failed and
not to be retried, or not a segment at all). A message about a segment still pending
stays in the queue and comes back after the queue's visibility timeout: if the run
that took the segment died, the next tick plans it again (leases keep two runs off
one segment). A notification that never arrives (lost, queue purged, notifications
switched on late) is caught by the periodic full listing
(``index.full_reconcile_every_s``), which the flows run as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

import botocore.session

from citywatch.errors import BadInputError
from citywatch.footage import Discovery, SegmentRef, shown
from citywatch.listing import ObjectInfo
from citywatch.schemas import SegmentRow
from citywatch.settings import Settings
from citywatch.tasks.index.discovery import Known

log = logging.getLogger(__name__)

BATCH = 10  # SQS returns and deletes at most 10 messages per request
MAX_MESSAGES = 5000  # read per tick at most; the rest waits for the next tick


@dataclass(frozen=True, slots=True)
class Message:
    """One queue message: its receipt handle and the footage files it names."""

    receipt: str
    files: list[ObjectInfo]


@dataclass(slots=True)
class Notified:
    """What one read of the queue found."""

    messages: list[Message] = field(default_factory=list)

    @property
    def files(self) -> list[ObjectInfo]:
        seen: dict[str, ObjectInfo] = {}
        for message in self.messages:
            for info in message.files:
                seen[info.url] = info  # the newest notification of a key wins (its size)
        return list(seen.values())

    def settled(self, unsettled_urls: Collection[str]) -> list[str]:
        """Receipts of the messages none of whose files is still unsettled."""
        return [m.receipt for m in self.messages if not any(f.url in unsettled_urls for f in m.files)]


def queue_client(settings: Settings) -> Any:  # noqa: ANN401 - botocore's generated SQS client
    """An SQS client for the notification queue (same credentials and endpoint as S3
    unless ``index.notification_endpoint_url`` names another); made once per process and
    configuration, not every tick."""
    s3 = settings.s3
    return _client(
        s3.region,
        settings.index.notification_endpoint_url or s3.endpoint_url,
        s3.access_key_id,
        s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
        s3.session_token.get_secret_value() if s3.session_token else None,
    )


@lru_cache(maxsize=8)
def _client(region: str, endpoint: str | None, key: str | None, secret: str | None, token: str | None) -> Any:  # noqa: ANN401
    return botocore.session.get_session().create_client(
        "sqs",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )


def created_files(body: str, footage_url: str) -> list[ObjectInfo]:
    """The objects under ``footage_url`` that an S3 event message says were created.

    Test events, other event types and objects elsewhere in the bucket are ignored;
    a body that is not an S3 event is logged and ignored (it is deleted with the rest).
    """
    try:
        event = json.loads(body)
    except json.JSONDecodeError:
        log.warning("notification queue: a message that is not JSON was ignored")
        return []
    if isinstance(event, dict) and "Message" in event and isinstance(event["Message"], str):
        return created_files(event["Message"], footage_url)  # delivered through SNS
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return []
    prefix = footage_url.rstrip("/") + "/"
    out: list[ObjectInfo] = []
    for record in records:
        try:
            name = str(record["eventName"])
            bucket = str(record["s3"]["bucket"]["name"])
            key = unquote_plus(str(record["s3"]["object"]["key"]))
            size = int(record["s3"]["object"].get("size", 0))
        except (KeyError, TypeError, ValueError):
            log.warning("notification queue: a record without bucket, key or size was ignored")
            continue
        url = f"s3://{bucket}/{key}"
        if name.startswith("ObjectCreated:") and url.startswith(prefix):
            out.append(ObjectInfo(url, url.removeprefix(prefix), size))
    return out


def receive(client: Any, queue_url: str, footage_url: str, limit: int = MAX_MESSAGES) -> Notified:  # noqa: ANN401
    """Read what the queue holds now (no waiting), up to ``limit`` messages."""
    notified = Notified()
    while len(notified.messages) < limit:
        reply = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=0)
        batch = reply.get("Messages", [])
        if not batch:
            break
        for raw in batch:
            files = created_files(raw.get("Body", ""), footage_url)
            notified.messages.append(Message(raw["ReceiptHandle"], files))
    return notified


def delete(client: Any, queue_url: str, receipts: Iterable[str]) -> None:  # noqa: ANN401
    """Delete the messages of ``receipts`` (in batches of ten)."""
    handles = list(receipts)
    for start in range(0, len(handles), BATCH):
        chunk = handles[start : start + BATCH]
        reply = client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)],
        )
        for failure in reply.get("Failed", []):
            code = failure.get("Code")
            log.warning("notification queue: a message was not deleted (%s); it comes back", code)


def named_conflicts(discovery: Discovery, known: Mapping[str, Known | SegmentRow]) -> Discovery:
    """A notified file whose segment id is already indexed from another file is a conflict.

    A listing sees both files of a clash (``discover_segments`` names them); a
    notification names only the new one, so the ``segments`` row stands for the other.
    """
    segments: list[SegmentRef] = []
    conflicts, conflict_ids = list(discovery.conflicts), list(discovery.conflict_ids)
    for ref in discovery.segments:
        row = known.get(ref.id)
        if row is None or row.uri == ref.uri:
            segments.append(ref)
            continue
        conflicts.append(
            f"segment {ref.id} has 2 files, none indexed until one is left: "
            + ", ".join(sorted((shown(ref.uri), shown(row.uri))))
        )
        conflict_ids.append(ref.id)
    return replace(discovery, segments=segments, conflicts=conflicts, conflict_ids=sorted(conflict_ids))


def check_queue_setting(settings: Settings, footage_url: str) -> None:
    """Notifications come from an object store: refuse them for footage on local disk."""
    if settings.index.notification_queue_url and not footage_url.startswith("s3://"):
        raise BadInputError(
            f"index.notification_queue_url is set but the footage location {footage_url} is not on S3: "
            "unset it (local footage is listed from the discovery marks)"
        )
