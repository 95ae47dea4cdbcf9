"""The alert page's two forms, acknowledge and resolve, and what happens to a form that is not taken.

Each POST needs the session's CSRF token and answers with a 303 to the page to show next: the alert's
page, which says why a form was refused and holds it as it was filled (drafts.py). GETs change nothing.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.alerts.store import AlertStore
from service.errors import AlertNotFound, Conflict, NotFound, RateLimited, Unprocessable
from service.routes.deps import AlertsDep
from service.schemas import ID_PATTERN
from service.ui import drafts, pages
from service.ui.sessions import Session
from service.ui.signed_in import CsrfToken, FormField, FormRefused, FormSessionDep, codec, count, sign_in_page
from service.ui.words import NOT_RECORDED, VERDICTS


router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/alerts/{alert_id}/acknowledge")
@router.get("/alerts/{alert_id}/resolve")
async def form_address(alert_id: str, request: Request) -> Response:
    """A form's address, reloaded or copied from the address bar: the alert's page (a GET does nothing)."""
    return pages.redirect(page_of(request, alert_id))


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: str, request: Request, session: FormSessionDep, alerts: AlertsDep,
                      csrf_token: CsrfToken = "", seal: FormField = "") -> Response:
    if session is None or not codec(request).csrf_ok(session, csrf_token):
        return await _not_taken(request, session, drafts.Unsent(alert_id, "acknowledge", seal=seal))
    if (refused := await _counted(request, session, alert_id, "acknowledge")) is not None:
        return refused
    try:
        await alerts.acknowledge(valid(alert_id), session.label)
    except AlertNotFound:
        raise _gone(alert_id, "acknowledge") from None
    except Conflict as exc:  # a resolved alert: say why, on its page
        return await _refused(request, session, alert_id, drafts.Draft(exc.message), "acknowledge")
    return await _answered(request, session, alert_id, "acknowledged")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(alert_id: str, request: Request, session: FormSessionDep, alerts: AlertsDep,
                  csrf_token: CsrfToken = "", verdict: FormField = "", note: FormField = "",
                  seal: FormField = "", replaces: FormField = "") -> Response:
    if session is None or not codec(request).csrf_ok(session, csrf_token):
        return await _not_taken(request, session, drafts.Unsent(alert_id, "resolve", verdict, note, seal, replaces))
    if (refused := await _counted(request, session, alert_id, "resolve", verdict, note)) is not None:
        return refused
    try:
        if verdict not in VERDICTS:
            await load(alerts, alert_id)  # no such alert: not found, before the verdict is asked for
            return await _refused(request, session, alert_id,
                                  drafts.Draft("Choose a verdict to resolve the alert.", None, note), "resolve")
        judged = await alerts.resolve(valid(alert_id), verdict, note.strip() or None, session.label,
                                      replaces=replaces or None)
    except AlertNotFound:
        raise _gone(alert_id, "resolve") from None
    except Conflict as exc:  # judged meanwhile: whose verdict stands, and that this one was not recorded
        return await _refused(request, session, alert_id, drafts.Draft(
            f"Your verdict was not recorded: {exc.message}. The verdict that stands is on this page; yours and your "
            "note are kept in the form below.", verdict, note),
            "resolve")
    except Unprocessable as exc:  # a note too long
        return await _refused(request, session, alert_id, drafts.Draft(exc.message, verdict, note), "resolve")
    if judged.get("resolved_by") not in (None, session.label):  # the same judgment, made by another key first
        return await _refused(request, session, alert_id, drafts.Draft(
            f"Your verdict was not recorded: {judged['resolved_by']} had resolved the alert with the same one first."),
            "resolve")
    return await _answered(request, session, alert_id, "resolved")


async def _answered(request: Request, session: Session, alert_id: str, done: str) -> Response:
    """To the alert's page, which says the form was taken. A marker (an empty draft) goes with it: the
    page it redirects to is then not counted against the rate limit again (the form was): counted, it
    answered "Too many requests" for a verdict just recorded (a re-audit)."""
    await keep_draft(request, session, alert_id, drafts.Draft(""), unless_kept=True)
    return pages.redirect(f"{page_of(request, alert_id)}?done={done}")


async def _counted(request: Request, session: Session, alert_id: str, action: str, verdict: str = "",
                   note: str = "") -> Response | None:
    """A form counted against its key's rate limit; past it, back to the alert's page with the form as
    it was filled (a rate-limited verdict was a bare "Too many requests" page that lost the note)."""
    try:
        await count(request, session)
    except RateLimited as exc:
        return await _refused(request, session, valid(alert_id), drafts.Draft(
            f"{_not_recorded(action)}: {exc.message}. Send it again in a moment.",
            verdict if verdict in VERDICTS else None, note), action)
    return None


def _not_recorded(action: str) -> str:
    """What a form that was not taken did not do, as a sentence starts: "Your verdict was not recorded"."""
    said = NOT_RECORDED[action]
    return f"{said[0].upper()}{said[1:]}"


def _gone(alert_id: str, action: str) -> NotFound:
    """A form for an alert that is gone: its user was erased (or expired) while the page was open."""
    return NotFound(f"No alert {alert_id} exists any more: its user was erased, or their data expired. "
                    f"Nothing was recorded ({NOT_RECORDED[action]}).")


async def _not_taken(request: Request, session: Session | None, unsent: drafts.Unsent) -> Response:
    """A form of an alert's page without a valid session or without its CSRF token. It changes nothing.
    Sent after its session ended (expired, signed out in another tab): sign in again, and the alert's
    page holds it. From a page older than this session (signed out and in again elsewhere), sealed for
    this key: back to the alert's page, which holds it. Anything else: refused (another site's forgery)."""
    valid(unsent.alert)
    if session is None:
        return sign_in_page(request, status_code=401, next=page_of(request, unsent.alert), unsent=unsent)
    if not codec(request).sealed(unsent.seal, session, time.time()):
        raise FormRefused()
    if not await keep_unsent(request, session, unsent, "the page was older than your sign-in", sealed=True):
        raise _gone(unsent.alert, unsent.action)
    return pages.redirect(page_of(request, unsent.alert))


async def keep_unsent(request: Request, session: Session, unsent: drafts.Unsent, why: str, *,
                      sealed: bool) -> bool:
    """Keep a form that was not taken for its alert's page, which says so; False when the alert is gone
    (its user erased meanwhile: nothing about them is kept, drafts.forget ran already). What it held
    (the verdict, the note), and the form at all, only when ``sealed``: its seal shows it was rendered for
    this key (sessions.py; the caller checked it once): a forged form is never put before the analyst as
    if they had sent it. Resolved meanwhile, there is nothing to send again: the page says by whom."""
    try:
        alert = await request.app.state.alerts.get(unsent.alert)
    except NotFound:
        return False
    if not sealed:  # not this key's form: another site's POST put "not recorded" on the page of an alert the
        return True  # reviewer never touched, nudging them to judge it (a re-audit); nothing is kept of it
    # judged since the page was shown (a first verdict's page showed it unresolved; a change's, the judgment
    # it replaces): nothing to send again as it was. Judged before, as the page showed it: send it again
    judged_since = alert["status"] == "resolved" and unsent.replaces != alert["resolved_at"]
    then = (f"; meanwhile {alert.get('resolved_by') or 'someone'} resolved it as {alert['verdict'].replace('_', ' ')}"
            if judged_since else ". Send it again")
    draft = drafts.Draft(f"{_not_recorded(unsent.action)}: {why}{then}.",
                         unsent.verdict if unsent.verdict in VERDICTS else None, unsent.note)
    return await keep_draft(request, session, unsent.alert, draft)


async def _refused(request: Request, session: Session, alert_id: str, draft: drafts.Draft,
                   action: str) -> Response:
    """Back to the alert's page, which says why and holds the form as it was filled (drafts.py): at its
    own address, where a reload posts nothing again. No such alert (never, or its user erased): 404."""
    if not await keep_draft(request, session, alert_id, draft):
        raise _gone(alert_id, action)
    return pages.redirect(page_of(request, alert_id))


async def keep_draft(request: Request, session: Session, alert_id: str, draft: drafts.Draft, *,
                unless_kept: bool = False) -> bool:
    """Keep a draft only of an alert that exists, and still does once it is written; False otherwise.
    Checked before: a rate-limited form kept one for any id (an audit filled Redis with invented ones) and
    for an erased user's alert (a note about them written after the erasure's 204). Checked after, and
    taken back: an erasure between the check and the write has swept drafts before this one landed."""
    alerts, redis = request.app.state.alerts, request.app.state.store.redis
    if not await alerts.exists(alert_id):
        return False
    await drafts.keep(redis, session.nonce, alert_id, draft, key_id=session.key_id, unless_kept=unless_kept)
    if not await alerts.exists(alert_id):
        await drafts.drop(redis, session.nonce, alert_id)
        return False
    return True


def page_of(request: Request, alert_id: str) -> str:
    return f"{pages.base(request)}/alerts/{quote(alert_id, safe='')}"


def valid(alert_id: str) -> str:
    if not ID_PATTERN.fullmatch(alert_id):
        raise NotFound(f"no alert {alert_id}")
    return alert_id


async def load(alerts: AlertStore, alert_id: str) -> dict[str, Any]:
    try:
        return await alerts.get(valid(alert_id))
    except AlertNotFound:
        raise NotFound(f"No alert {alert_id}: there never was one, or its user was erased or their data "
                       "expired.") from None
