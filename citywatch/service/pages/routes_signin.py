"""Sign-in and sign-out pages (the API's own sign-in code: same lockout, same audit) and assets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import ValidationError

from citywatch.errors import NotFoundError
from citywatch.service import routes_auth
from citywatch.service.models import Login
from citywatch.service.pages.render import HEADERS, STATIC, is_fragment, redirect, render

router = APIRouter()
ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/cases", status_code=303)


@router.get("/static/{name}")
def asset(name: str) -> FileResponse:
    """The console's own CSS and JS (a fixed list: nothing else under the package is served)."""
    if name not in ASSETS:
        raise NotFoundError(f"no asset {name[:80]!r}")
    headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=headers)


@router.get("/login")
def signin_page(request: Request, next: str = "/cases", signed_out: bool = False) -> HTMLResponse:  # noqa: A002
    message = "You are signed out." if signed_out else ""
    return render(request, "signin.html", next=_safe_next(next), message=message, need_totp=False, name="")


@router.post("/login")
def signin(
    request: Request,
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    totp: Annotated[str, Form(max_length=10)] = "",
    next: Annotated[str, Form(max_length=500)] = "/cases",  # noqa: A002
) -> HTMLResponse:
    """Sign in through :func:`routes_auth.login`; errors are shown on the form."""
    target = _safe_next(next)
    try:
        body = Login(name=name, password=password, totp=totp.strip() or None)
    except ValidationError:
        return _again(request, "Give your name and your password.", name, target, bool(totp), 400)
    response = redirect(target)
    try:
        routes_auth.login(body, request, response)
    except HTTPException as exc:
        detail = str(exc.detail)
        if exc.status_code == 429:
            detail = f"This account is locked after too many failed sign-ins ({detail}). Try again later."
        need_totp = "TOTP" in detail or bool(totp)
        return _again(request, _sentence(detail), name, target, need_totp, exc.status_code)
    return response


@router.post("/logout")
def signout(request: Request) -> HTMLResponse:
    response = redirect("/login?signed_out=1")
    routes_auth.logout(request, response)
    return response


def _again(
    request: Request, message: str, name: str, target: str, need_totp: bool, status: int
) -> HTMLResponse:
    template = "signin_form.html" if is_fragment(request) else "signin.html"
    return render(
        request, template, status, message=message, name=name, next=target, need_totp=need_totp, error=True
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _safe_next(target: str) -> str:
    """Only a path on this service (never another site) after sign-in."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok and not target.startswith("/login") else "/cases"


__all__ = ["HEADERS", "router"]
