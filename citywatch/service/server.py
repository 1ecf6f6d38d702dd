"""Running the service under uvicorn (``citywatch serve``)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from citywatch.errors import CitywatchError
from citywatch.settings import Settings
from citywatch.stack.prefect_server import ensure_prefect_server

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Serve the API on ``service_host:service_port`` (HTTPS with the TLS settings) until stopped.

    Starts (or reuses) the local Prefect server the searches run on, as the CLI does,
    unless ``PREFECT_API_URL`` names one.
    """
    import uvicorn

    from citywatch.service.app import create_app

    ensure_prefect_server(settings.storage.state_dir)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.service.host,
        port=settings.service.port,
        ssl_certfile=settings.service.tls_cert,
        ssl_keyfile=settings.service.tls_key,
        proxy_headers=False,  # the client address is the peer's; no X-Forwarded-For trust by default
        log_level="info",
    )


@contextmanager
def serving_in_thread(settings: Settings, host: str = "127.0.0.1") -> Iterator[str]:
    """The service on ``host`` and a free port, in a thread of this process; yields its base URL.

    For the demo and the load benchmark (one process, one command); `citywatch serve`
    is the real deployment. The server's threads see this thread's context (Prefect settings).
    """
    import uvicorn

    from citywatch.service.app import create_app

    config = uvicorn.Config(create_app(settings), host=host, port=0, log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise CitywatchError("the citywatch service did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
