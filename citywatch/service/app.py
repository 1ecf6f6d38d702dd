"""The FastAPI application: routers, the gate, and errors as JSON ``{"error": ...}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from citywatch.errors import BadInputError, CitywatchError, ForbiddenError, NotFoundError, TransientError
from citywatch.service.gate import Gate
from citywatch.service.identity import Service
from citywatch.service.rules import RULES
from citywatch.settings import Settings


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves."""
    out = []
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            out.append((method, str(getattr(route, "path", ""))))
    return out


def check_rules(app: FastAPI) -> None:
    """Refuse to start with an endpoint that has no access rule (or a rule for no endpoint)."""
    served = set(endpoints(app))
    missing = sorted(served - set(RULES))
    if missing:
        raise RuntimeError(f"endpoints without an access rule in citywatch/service/rules.py: {missing}")
    stale = sorted(set(RULES) - served)
    if stale:
        raise RuntimeError(f"access rules for endpoints that do not exist: {stale}")


def _status(exc: CitywatchError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, BadInputError):
        return 400
    if isinstance(exc, ForbiddenError):
        return 403
    if isinstance(exc, TransientError):
        return 503
    return 500


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)[:2000]


def create_app(settings: Settings, *, check: bool = True) -> FastAPI:
    """The service app for ``settings`` (storage root, sessions, limits)."""
    from citywatch.service import (
        routes_admin,
        routes_auth,
        routes_coappear,
        routes_governed,
        routes_oidc,
        routes_search,
        routes_status,
        routes_watchlist,
    )

    app = FastAPI(
        title="citywatch",
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.service = Service(settings)
    for module in (
        routes_auth,
        routes_oidc,
        routes_search,
        routes_coappear,
        routes_watchlist,
        routes_governed,
        routes_admin,
        routes_status,
    ):
        app.router.routes.extend(module.router.routes)  # flat: the gate matches routes itself

    @app.exception_handler(CitywatchError)
    async def _citywatch_error(request: Request, exc: CitywatchError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=_status(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    if check:
        check_rules(app)
    app.add_middleware(Gate, service=app.state.service, routes=app.router.routes)
    return app


__all__ = ["APIRoute", "check_rules", "create_app", "endpoints"]
