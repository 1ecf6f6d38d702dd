"""A real S3 API for tests: moto's ThreadedMotoServer on a free loopback port.

Each test makes its own bucket (:meth:`S3Server.bucket`), so one server serves the
whole session. Requests go over HTTP to the server like they would to AWS or MinIO,
through s3fs (footage, thumbnails, reports) and LanceDB's object store (tables).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from citywatch.settings import Settings

KEY = "testing"  # moto accepts any credentials; clients need some
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self) -> dict[str, str]:
        """The CITYWATCH_* variables that point a CLI run at this server."""
        return {"CITYWATCH_S3_ENDPOINT_URL": self.endpoint, "CITYWATCH_S3_ACCESS_KEY_ID": KEY,
                "CITYWATCH_S3_SECRET_ACCESS_KEY": KEY, "CITYWATCH_S3_ALLOW_HTTP": "true"}

    def settings(self, root: str, **extra: object) -> Settings:
        return Settings(storage_root=root, s3_endpoint_url=self.endpoint, s3_access_key_id=KEY,
                        s3_secret_access_key=KEY, s3_allow_http=True, **extra)

    def bucket(self, prefix: str = "citywatch") -> str:
        """A new empty bucket; returns ``s3://<name>``."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY,
                              aws_secret_access_key=KEY, region_name=REGION)
        client.create_bucket(Bucket=name)
        return f"s3://{name}"


def upload(settings: Settings, local_root: Path, keys: Iterable[str]) -> None:
    """Copy ``keys`` (files or folders relative to ``local_root``) under the s3 root."""
    from citywatch.storage import Storage

    storage = Storage(settings)
    fs, root = storage.fs(storage.root)
    for key in keys:
        source = local_root / key
        if source.is_dir():
            fs.put(f"{source}/", f"{root}/{key}", recursive=True)
        else:
            fs.put_file(str(source), f"{root}/{key}")


@contextmanager
def moto_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
