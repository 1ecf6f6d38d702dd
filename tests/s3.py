"""A real S3 API for tests: moto's ThreadedMotoServer on a free loopback port.

Each test makes its own bucket (:meth:`S3Server.bucket`), so one server serves the
whole session; a test that takes the service down runs its own (:class:`MotoServer`).
Requests go over HTTP to the server like they would to AWS or MinIO, through s3fs
(footage, thumbnails, reports) and LanceDB's object store (tables).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from citywatch.settings import Settings

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

KEY = "testing"  # moto accepts any credentials; clients need some
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def env(self) -> dict[str, str]:
        """The CITYWATCH_* variables that point a CLI run at this server."""
        return {
            "CITYWATCH_S3__ENDPOINT_URL": self.endpoint,
            "CITYWATCH_S3__ACCESS_KEY_ID": KEY,
            "CITYWATCH_S3__SECRET_ACCESS_KEY": KEY,
            "CITYWATCH_S3__ALLOW_HTTP": "true",
        }

    def settings(self, root: str, **extra: object) -> Settings:
        return Settings(
            storage__root=root,
            s3__endpoint_url=self.endpoint,
            s3__access_key_id=KEY,
            s3__secret_access_key=KEY,
            s3__allow_http=True,
            **extra,
        )

    def bucket(self, prefix: str = "citywatch") -> str:
        """A new empty bucket; returns ``s3://<name>``."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=KEY,
            region_name=REGION,
        )
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


class MotoServer:
    """moto's ThreadedMotoServer on one loopback port that can go down and come back.

    moto keeps buckets and objects in process-wide backends, so a server started again
    on the same port serves the same data: to clients the S3 service was down (connections
    refused) and is back. The first :meth:`start` picks a free port.
    """

    def __init__(self) -> None:
        self.port = 0
        self._server: ThreadedMotoServer | None = None

    def start(self) -> S3Server:
        from moto.server import ThreadedMotoServer

        if self.port:  # ThreadedMotoServer.start() would wait forever on a taken port
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", self.port))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        host, self.port = server.get_host_and_port()
        self._server = server
        return S3Server(f"http://{host}:{self.port}")

    def stop(self) -> None:
        """Shut the server down; the port refuses connections until :meth:`start`."""
        if self._server is not None:
            self._server.stop()
            self._server = None


@contextmanager
def moto_server() -> Iterator[S3Server]:
    server = MotoServer()
    try:
        yield server.start()
    finally:
        server.stop()
