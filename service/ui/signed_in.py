"""Who is signed in to /ui, the dependencies that ask it, and the sign-in page.

Every page but sign-in needs a session (sessions.py); without one the browser is sent to sign-in and
back afterwards (SignInRequired). Every POST but sign-in needs the session's CSRF token (FormRefused).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import Response

from service import keys
from service.state_store import guarded
from service.ui import drafts, pages
from service.ui.sessions import COOKIE, SECURE_COOKIE, Session, SessionCodec
from service.ui.words import NOT_RECORDED


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class FormRefused(Exception):
    """A POST without this session's CSRF token: from another site, or a page older than the session."""


def codec(request: Request) -> SessionCodec:
    sessions: SessionCodec = request.app.state.ui_sessions  # app.state's attributes are Any
    return sessions


def secure(request: Request) -> bool:
    """Is the page served over HTTPS (here, or at the public URL a proxy serves it at)?"""
    return request.url.scheme == "https" or request.app.state.settings.public_url.startswith("https://")


def cookie_name(request: Request) -> str:
    return SECURE_COOKIE if secure(request) else COOKIE


def cookie_path(request: Request) -> str:
    return "/" if secure(request) else pages.base(request)  # a __Host- cookie's path is /


def session_cookies(request: Request) -> list[str]:
    """Every value the request carries under the session cookie's name. A browser sends two when another page
    set one for a parent domain, and a plain read takes the last, possibly that one (an audit swapped a
    reviewer's session so): two are no session."""
    name = cookie_name(request)
    # only the spaces and tabs of the header's grammar are trimmed: str.strip() also took a no-break space
    # off a planted "\xa0__Host-..." cookie, which a browser stores as another name (a re-audit)
    pairs = (part.strip(" \t").split("=", 1) for part in request.headers.get("cookie", "").split(";"))
    return [pair[1].strip(" \t") for pair in pairs if len(pair) == 2 and pair[0].strip(" \t") == name]


async def signed_in(request: Request) -> Session | None:
    """The request's session; None without one, with two, or once it expired, its key is gone or it signed out."""
    cookies = session_cookies(request)
    session = codec(request).read(cookies[0] if len(cookies) == 1 else None, time.time())
    if session is None or await guarded(request.app.state.store.redis.exists(keys.ui_signed_out(session.nonce))):
        return None
    request.state.ui_session = session  # every page rendered for this request is signed in (pages.render)
    return session


async def count(request: Request, session: Session) -> None:
    """The request counted against its session key's rate limit (RateLimited past it), once."""
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and not getattr(request.state, "rate_counted", False):
        request.state.rate_counted = True
        await limiter.check_session(session.key_id)


async def current_session(request: Request, session: Annotated[Session | None, Depends(signed_in)]) -> Session | None:
    """``signed_in``, the request counted against its key's rate limit (the alert page's picture is
    not: it is part of the page, and counted, each verdict at 2 a second was a POST, a page and a 429
    picture: a re-audit; a form counts itself, to keep what it held when refused)."""
    if session is not None:
        await count(request, session)
    return session


MaybeSessionDep = Annotated[Session | None, Depends(current_session)]
FormSessionDep = Annotated[Session | None, Depends(signed_in)]  # counted by the form (_counted)


def _required(request: Request, session: Session | None) -> Session:
    if session is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(here if request.method == "GET" else pages.base(request))
    return session


async def page_session(request: Request, session: MaybeSessionDep) -> Session:
    return _required(request, session)


async def uncounted_session(request: Request, session: Annotated[Session | None, Depends(signed_in)]) -> Session:
    return _required(request, session)


# required, not counted: the picture (part of its page) and the alert's page, which counts itself (routes.py)
UncountedSessionDep = Annotated[Session, Depends(uncounted_session)]
SessionDep = Annotated[Session, Depends(page_session)]
CsrfToken = Annotated[str, Form()]
FormField = Annotated[str, Form()]


def check_form(request: Request, session: Session, token: str) -> None:
    if not codec(request).csrf_ok(session, token):
        raise FormRefused()


def sign_in_page(request: Request, *, next: str, status_code: int = 200, error: str | None = None,
                  unsent: drafts.Unsent | None = None) -> Response:
    """``unsent``: a form of an alert's page sent after its session ended, carried through the sign-in
    form (never a URL) to the alert's page (_keep_unsent)."""
    notice = None if unsent is None else (f"Your session had ended, so {NOT_RECORDED[unsent.action]}. "
                                          "Sign in again, then send it from the alert's page.")
    if error is None and len(session_cookies(request)) > 1:  # a planted one: signing in again would not help
        error = ("Your browser holds two session cookies for this page, one set by another site or another port "
                 "of this host, so neither is used. Clear this site's cookies in your browser, then sign in.")
    return pages.render(request, "sign_in.html", status_code=status_code, next=next, error=error, notice=notice,
                        unsent=None if unsent is None else unsent.fields(), open_mode=codec(request).open_mode)
