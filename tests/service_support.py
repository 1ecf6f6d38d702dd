"""Helpers for the service tests: a root with signed-in users, TestClient sign-in, a real uvicorn."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from citywatch.governance.users import add_user
from citywatch.settings import Settings
from citywatch.stack.prefect_server import free_port
from citywatch.storage import Storage

PASSWORD = "correct horse battery"
USERS = {
    "ann": ["analyst"],
    "ivy": ["investigator"],
    "sam": ["supervisor"],
    "sue": ["supervisor"],
    "ada": ["admin"],
}
WHY = "suspect in the 2026-11-20 robbery on Main St"


def service_settings(root: Path, **extra: object) -> Settings:
    extra.setdefault("auth__login_max_failures", 3)
    # this machine's state (Prefect home, audit checkpoints) lives beside the root, not in it:
    # checkpoints inside the storage root are refused
    return Settings(
        storage__root=str(root), storage__state_dir=str(root.parent / f"{root.name}-state"), **extra
    )


def add_users(settings: Settings, users: dict[str, list[str]] | None = None) -> None:
    storage = Storage(settings)
    for name, roles in (users or USERS).items():
        add_user(storage, name, roles, PASSWORD, "test")


def sign_in(client, name: str, password: str = PASSWORD, **extra: object) -> dict[str, str]:  # noqa: ANN001
    """Sign ``client`` in; returns the headers its writes need (the CSRF token)."""
    response = client.post("/api/auth/login", json={"name": name, "password": password, **extra})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


@contextmanager
def running_service(settings: Settings) -> Iterator[str]:
    """A real uvicorn server for ``settings`` on a free loopback port; yields its base URL."""
    import uvicorn

    from citywatch.service.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    # the server's threads see this thread's context (a test's temporary Prefect settings)
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
