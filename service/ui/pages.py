"""Rendering: the Jinja2 environment (autoescaped) and the headers every /ui response carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from service.timestamps import for_people

HERE = Path(__file__).resolve().parent
STYLESHEET = (HERE / "static" / "ui.css").read_bytes()
# named by every page: without one, browsers ask for /favicon.ico, a 404 in every console
FAVICON = (HERE / "static" / "favicon.svg").read_bytes()

# No script anywhere, styles and images only from this origin, forms only to it, never framed (the
# resolve buttons must not be clickjacked). Pages show who drifted: never cached, no referrer abroad.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _percent(value: float) -> str:
    return f"{100 * float(value):.0f}%"


ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENV.filters["percent"] = _percent
ENV.filters["when"] = for_people
ENV.filters["urlpart"] = lambda value: quote(str(value), safe="")


def base(request: Request) -> str:
    """Where the page lives: /ui under whatever prefix a proxy serves the app at."""
    return f"{request.scope.get('root_path', '').rstrip('/')}/ui"


def from_another_site(request: Request, public_url: str) -> bool:
    """A POST a page of another origin made the browser send (a sign-in has no CSRF token yet to check).
    ``Sec-Fetch-Site``, which every current browser sends, says it; without it, ``Origin`` against this
    request's own origin or the public URL. Neither (curl, a script): not a browser's cross-site form."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")  # none: the user's own navigation
    origin = request.headers.get("origin")
    if origin is None:
        return False
    own = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    if public_url:
        parts = urlsplit(public_url)
        own.add(f"{parts.scheme}://{parts.netloc}")
    return origin not in own


def _in(path: str, home: str) -> bool:
    return path == home or path.startswith(home + "/")


def under_ui(request: Request) -> bool:
    """Is this a request for the page (a person's), not for the API?"""
    return _in(request.url.path, base(request))


def safe_next(request: Request, target: str | None) -> str:
    """Only a page of this UI: never another site (an open redirect would lend it our name), nor another
    path of this one (``/ui/../v1/alerts`` is /v1/alerts to the browser); anything else goes home.

    The path must be plain: no scheme or host, no backslash (browsers read it as ``/``), no control
    character or space (browsers drop tabs and newlines, which can join ``.`` and ``.``), no empty,
    ``.`` or ``..`` segment, spelt out or percent-encoded (browsers decode ``%2e``)."""
    home = base(request)
    if not target or "\\" in target or any(ch <= " " or ch == "\x7f" for ch in target):
        return home
    try:
        parts = urlsplit(target)
    except ValueError:
        return home
    segments = unquote(parts.path).split("/")
    if (parts.scheme or parts.netloc or not _in(parts.path, home)
            or any(segment in ("", ".", "..") for segment in segments[1:-1]) or segments[-1] in (".", "..")):
        return home
    return target


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page; signed in (routes.current_session found the request's session), with the header's
    sign-out form and its CSRF token, error pages included."""
    session = context.setdefault("session", getattr(request.state, "ui_session", None))
    context.setdefault("csrf_token", "" if session is None else request.app.state.ui_sessions.csrf_token(session))
    html = ENV.get_template(template).render(base=base(request), **context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def redirect(location: str) -> RedirectResponse:
    """303: after a form, the browser GETs the next page (reloading it does not post again)."""
    return RedirectResponse(location, status_code=303, headers=HEADERS)


def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={**HEADERS, "Cache-Control": "max-age=3600"})


def favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={**HEADERS, "Cache-Control": "max-age=86400"})
