"""Running the service under uvicorn (``citywatch serve``)."""

from __future__ import annotations

import logging

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
