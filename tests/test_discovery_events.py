"""Discovery by event (issue 19 items 2 and 6): index ticks read S3 object-created
notifications from an SQS queue instead of listing camera folders.

moto's S3 server sends real notifications to its SQS queue when the bucket is set up
for them (as AWS does); the footage files are one byte: planning never opens them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import boto3
import pytest

from citywatch.errors import BadInputError
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tasks.index.notifications import created_files
from tests.s3 import KEY, REGION
from tests.test_discovery import pending_ids, plan, stamp, write_rows

VISIBILITY_S = 1  # a message about a pending segment comes back after this


@dataclass(frozen=True)
class Notifying:
    storage: Storage
    sqs: object  # boto3 SQS client (the test's own, to look into the queue)
    queue_url: str
    root: str  # in-filesystem path of the storage root

    def put(self, segment: str, suffix: str = ".mp4") -> None:
        fs, _ = self.storage.fs(self.storage.root)
        fs.pipe_file(f"{self.root}/footage/{segment}{suffix}", b"v")

    def waiting(self) -> int:
        """Messages in the queue, visible or taken and not yet deleted."""
        attrs = self.sqs.get_queue_attributes(  # type: ignore[attr-defined]
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def notifying(s3_server) -> Notifying:  # noqa: ANN001
    """A bucket whose footage folder notifies an SQS queue of every object created."""
    bucket = s3_server.bucket()
    name = bucket.removeprefix("s3://")
    creds = {"aws_access_key_id": KEY, "aws_secret_access_key": KEY, "region_name": REGION}
    sqs = boto3.client("sqs", endpoint_url=s3_server.endpoint, **creds)
    queue_url = sqs.create_queue(
        QueueName=f"footage-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": str(VISIBILITY_S)}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, **creds)
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "city/footage/"}]}},
                }
            ]
        },
    )
    settings = s3_server.settings(f"{bucket}/city", index__notification_queue_url=queue_url)
    storage = Storage(settings)
    return Notifying(storage, sqs, queue_url, storage.fs(storage.root)[1])


def test_a_tick_plans_the_notified_segment_without_listing(
    notifying: Notifying, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = [f"cam-{c}/{stamp(m)}" for c in ("a", "b") for m in range(0, 20, 2)]
    for seg in old:
        notifying.put(seg)
    write_rows(notifying.storage, old, size=1)
    assert not plan(notifying.storage, "reconcile").pending  # the daily full listing: all indexed

    def no_listing(*_: object) -> None:
        raise AssertionError("a tick with a notification queue listed the footage")

    monkeypatch.setattr(Storage, "list_top", no_listing)
    monkeypatch.setattr(Storage, "list_folder_from", no_listing)
    first = plan(notifying.storage)  # the notifications of the old files: all settled
    assert not first.full_listing and not first.pending
    assert notifying.waiting() == 0  # and deleted

    new = f"cam-a/{stamp(40)}"
    notifying.put(new)
    tick = plan(notifying.storage)
    assert pending_ids(tick) == [new]
    assert notifying.waiting() == 1  # kept until the segment is settled

    # the run that took it died: the message comes back and the next tick plans it again
    time.sleep(VISIBILITY_S + 0.5)
    assert pending_ids(plan(notifying.storage)) == [new]

    write_rows(notifying.storage, [new], size=1)  # now indexed
    time.sleep(VISIBILITY_S + 0.5)
    assert not plan(notifying.storage).pending
    assert notifying.waiting() == 0


def test_a_lost_notification_is_found_by_the_full_listing(notifying: Notifying) -> None:
    old = f"cam-b/{stamp(2)}"
    notifying.put(old)
    write_rows(notifying.storage, [old], size=1)
    assert not plan(notifying.storage, "reconcile").pending  # marks recorded: ticks read the queue
    lost = f"cam-b/{stamp(7)}"
    notifying.put(lost)
    notifying.sqs.purge_queue(QueueUrl=notifying.queue_url)  # type: ignore[attr-defined]
    assert not plan(notifying.storage).pending
    assert pending_ids(plan(notifying.storage, "reconcile")) == [lost]


def test_a_notified_file_that_clashes_with_an_indexed_one_is_a_conflict(notifying: Notifying) -> None:
    seg = f"cam-a/{stamp(4)}"
    notifying.put(seg)
    write_rows(notifying.storage, [seg], size=1)
    notifying.put(seg, ".mkv")  # same camera and start: the same segment id
    tick = plan(notifying.storage)
    assert not tick.pending and tick.discovery.conflict_ids == [seg]
    assert "cam-a" in tick.discovery.conflicts[0] and ".mkv" in tick.discovery.conflicts[0]


def test_a_queue_for_footage_on_local_disk_is_refused(tmp_path) -> None:  # noqa: ANN001
    storage = Storage(
        Settings(storage__root=str(tmp_path), index__notification_queue_url="https://sqs.example/q")
    )
    write_rows(storage, [], size=1)
    with pytest.raises(BadInputError, match="notification_queue_url.*not on S3"):
        plan(storage, "incremental")


def test_only_created_objects_under_the_footage_location_count() -> None:
    def event(name: str, key: str) -> dict[str, object]:
        return {"eventName": name, "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 3}}}

    body = json.dumps(
        {
            "Records": [
                event("ObjectCreated:Put", "city/footage/cam-a/20261101T000000Z.mp4"),
                event("ObjectCreated:Put", "city/footage/cam+a%C3%A9/x.mp4"),  # URL-encoded key
                event("ObjectRemoved:Delete", "city/footage/cam-a/20261101T000500Z.mp4"),
                event("ObjectCreated:Put", "city/footage-old/cam-a/20261101T000000Z.mp4"),
                event("ObjectCreated:Put", "other/cam-a/20261101T000000Z.mp4"),
            ]
        }
    )
    found = created_files(body, "s3://b/city/footage")
    assert [(f.key, f.size) for f in found] == [("cam-a/20261101T000000Z.mp4", 3), ("cam aé/x.mp4", 3)]
    assert created_files('{"Event": "s3:TestEvent"}', "s3://b/city/footage") == []
    assert created_files("not json", "s3://b/city/footage") == []
    via_sns = json.dumps({"Type": "Notification", "Message": body})
    assert len(created_files(via_sns, "s3://b/city/footage")) == 2


def test_a_notified_key_that_climbs_out_of_the_footage_folder_is_no_segment() -> None:
    from citywatch.footage import discover_segments

    records = [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": key, "size": 1}}}
        for key in (
            "city/footage/../db/20261101T000000Z.mp4",
            "city/footage/cam-a/../../x/20261101T000000Z.mp4",
        )
    ]
    found = discover_segments(created_files(json.dumps({"Records": records}), "s3://b/city/footage"))
    assert not found.segments and len(found.misnamed) == 2
    assert all("must be at <camera_id>/" in m for m in found.misnamed)
