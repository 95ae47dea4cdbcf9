"""Signing in to /ui with a reviewer or admin key, and out (everywhere)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import access, keys
from service.routes.deps import SettingsDep
from service.schemas import ID_PATTERN
from service.state_store import guarded
from service.ui import drafts, pages
from service.ui.forms import keep_unsent
from service.ui.signed_in import (
    CsrfToken, FormField, SessionDep, check_form, codec, cookie_name, cookie_path, count, secure, sign_in_page,
)


router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    return sign_in_page(request, next=pages.safe_next(request, next))


@router.post("/sign-in")
async def sign_in(request: Request, settings: SettingsDep, api_key: FormField = "", next: FormField = "",
                  draft_alert: FormField = "", draft_action: FormField = "", draft_verdict: FormField = "",
                  draft_note: FormField = "", draft_seal: FormField = "", draft_replaces: FormField = "") -> Response:
    if pages.from_another_site(request, settings.public_url):
        # Login CSRF: another site's page signing the browser in with *its* key (an insider's), over the
        # session there was, onto an alert's page with a verdict of theirs filled in (an audit)
        return sign_in_page(request, status_code=403, next=pages.safe_next(request, next), error=(
            "A sign-in sent by another site's page was refused, and your session (if any) is as it was. "
            "Sign in here, on this page, if you meant to. If you did, and still see this, the service does not "
            f"know the address you reach it at ({request.headers.get('origin', 'unknown')}): its operator sets "
            "EMODRIFT_PUBLIC_URL to it (docs/ui.md)."))
    unsent = (drafts.Unsent(draft_alert, draft_action, draft_verdict, draft_note, draft_seal, draft_replaces)
              if draft_action in drafts.ACTIONS and ID_PATTERN.fullmatch(draft_alert) else None)
    issued = codec(request).issue(api_key.strip() or None, time.time())
    if issued is None:
        is_ingest = bool(api_key.strip()) and access.kind_of(settings, api_key.strip()) == "ingest"
        error = ("This is an ingest key (the platform's); the page needs a reviewer or admin key." if is_ingest
                 else "That is not a reviewer or admin API key of this service.")
        return sign_in_page(request, status_code=403 if is_ingest else 401, next=pages.safe_next(request, next),
                             error=error, unsent=unsent)
    cookie, session = issued
    # counted like the key's pages: uncounted, sign-ins each carrying a form made a new session (and the
    # alert page holding its draft) as fast as they came, 178 a second at a limit of 10 (an audit)
    await count(request, session)
    if unsent is not None:  # a form sent after the session ended: its alert's page will hold it
        await keep_unsent(request, session, unsent, "your session had ended",
                           sealed=codec(request).sealed(unsent.seal, session, time.time()))
    response = pages.redirect(pages.safe_next(request, next))
    # Lax, not Strict: a link to an alert opened from a chat or a mail (another site) must arrive signed
    # in. Lax sends the cookie only with top-level GETs from elsewhere, and GETs change nothing; every
    # POST also needs the CSRF token.
    response.set_cookie(cookie_name(request), cookie, max_age=codec(request).lifetime, path=cookie_path(request),
                        httponly=True, samesite="lax", secure=secure(request))
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep, csrf_token: CsrfToken = "") -> Response:
    check_form(request, session, csrf_token)
    remaining = max(1, session.expires - int(time.time()))
    await guarded(request.app.state.store.redis.set(keys.ui_signed_out(session.nonce), 1, ex=remaining))
    response = pages.redirect(f"{pages.base(request)}/sign-in")
    response.delete_cookie(cookie_name(request), path=cookie_path(request), httponly=True, samesite="lax",
                           secure=secure(request))
    return response
