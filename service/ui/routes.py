"""The /ui pages: sign-in and sign-out, the alerts list, an alert's page and its two forms.

Every page but sign-in needs a session (service/ui/sessions.py); without one the browser is sent to
sign-in and back afterwards. Every POST but sign-in needs the session's CSRF token, and answers with a
303 to the page to show next. GETs change nothing.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import Response

from service import access, evidence, keys, timeline_svg
from service.errors import AlertNotFound, BadRequest, Conflict, NotFound, RateLimited, Unprocessable
from service.alerts import lifecycle
from service.alerts.store import SCAN_LIMIT, AlertStore
from service.routes.deps import AlertsDep, PipelineDep, SettingsDep, StoreDep, UserId, forwards_query
from service.schemas import ID_PATTERN
from service.state_store import guarded
from service.emotions import LABELS, VALENCE
from service.ui import drafts, error_pages, pages, timeline_view
from service.ui.sessions import COOKIE, Session, SessionCodec

router = APIRouter(prefix="/ui", include_in_schema=False)

# the list's filters: each one's choices, the first its default
LIST_STATUSES: dict[str, tuple[str, ...] | None] = {"unresolved": ("open", "acknowledged"),
                                                    **{status: (status,) for status in lifecycle.STATUSES}, "all": None}
LIST_FILTERS = {"status": tuple(LIST_STATUSES), "source": ("live", "backfill", "all"),
                "type": ("any", *get_args(lifecycle.EventType))}
# what each verdict means to the person choosing it, for each type of alert (the API's ResolveRequest
# says the same): "the pattern did change" read oddly on an episode's end (an outside review)
VERDICT_WORDS = {
    "drift.started": {
        "confirmed": "Confirmed: the user's pattern did change",
        "false_alarm": "False alarm: it did not",
        "not_actionable": "Not actionable: it changed, but there is nothing to do",
    },
    "drift.ended": {
        "confirmed": "Confirmed: the episode did end (the user is back, or settled in a new pattern)",
        "false_alarm": "False alarm: it did not end",
        "not_actionable": "Not actionable: it ended, but there is nothing to do",
    },
}
VERDICTS = VERDICT_WORDS["drift.started"]
assert all(tuple(words) == lifecycle.VERDICTS for words in VERDICT_WORDS.values())
# what raised an episode, and what ended one, in the words of the alert's page (one for every value the
# Alert schema allows: a value without one, as "promotion" was, made the page a 500)
RAISED_BY = {
    "fast": "the drift score high for several posts in a row (fast rule)",
    "evidence": "the drift score's evidence added up over posts (evidence rule)",
    "share": "a lasting change in the share of negative emotions (share rule)",
    "promotion": "a newly served temporal model that sees this user drifting where the one before did not",
}
ENDED_BY = {
    "recovery": "the drift score and the negative share were back",
    "return_test": "the negative share was back by the re-baseline post (the return test)",
    "rebaseline": "still changed at the re-baseline post: the detector now watches for changes from this new "
                  "pattern; the user did not return to the earlier one",
    "promotion": "a newly served temporal model does not see this episode (docs/shadow.md)",
}
PAGE_SIZE = 50
PICTURE_POSTS = 200  # the API picture's default length


class SignInRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class FormRefused(Exception):
    """A POST without this session's CSRF token: from another site, or a page older than the session."""


def codec(request: Request) -> SessionCodec:
    sessions: SessionCodec = request.app.state.ui_sessions  # app.state's attributes are Any
    return sessions


async def signed_in(request: Request) -> Session | None:
    """The request's session; None without one, or once it expired, its key is gone or it signed out."""
    session = codec(request).read(request.cookies.get(COOKIE), time.time())
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


async def picture_session(request: Request, session: Annotated[Session | None, Depends(signed_in)]) -> Session:
    return _required(request, session)


PictureSessionDep = Annotated[Session, Depends(picture_session)]
SessionDep = Annotated[Session, Depends(page_session)]
CsrfToken = Annotated[str, Form()]
FormField = Annotated[str, Form()]


def check_form(request: Request, session: Session, token: str) -> None:
    if not codec(request).csrf_ok(session, token):
        raise FormRefused()


# --- sign-in and sign-out --------------------------------------------------------------------


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    return _sign_in_page(request, next=pages.safe_next(request, next))


@router.post("/sign-in")
async def sign_in(request: Request, settings: SettingsDep, api_key: FormField = "", next: FormField = "",
                  draft_alert: FormField = "", draft_action: FormField = "", draft_verdict: FormField = "",
                  draft_note: FormField = "", draft_seal: FormField = "") -> Response:
    unsent = (drafts.Unsent(draft_alert, draft_action, draft_verdict, draft_note, draft_seal)
              if draft_action in drafts.ACTIONS and ID_PATTERN.fullmatch(draft_alert) else None)
    issued = codec(request).issue(api_key.strip() or None, time.time())
    if issued is None:
        is_ingest = bool(api_key.strip()) and access.kind_of(settings, api_key.strip()) == "ingest"
        error = ("This is an ingest key (the platform's); the page needs a reviewer or admin key." if is_ingest
                 else "That is not a reviewer or admin API key of this service.")
        return _sign_in_page(request, status_code=403 if is_ingest else 401, next=pages.safe_next(request, next),
                             error=error, unsent=unsent)
    cookie, session = issued
    if unsent is not None:  # a form sent after the session ended: its alert's page will hold it
        await _keep_unsent(request, session, unsent, "your session had ended",
                           sealed=codec(request).sealed(unsent.seal, session, time.time()))
    response = pages.redirect(pages.safe_next(request, next))
    # Lax, not Strict: a link to an alert opened from a chat or a mail (another site) must arrive signed
    # in. Lax sends the cookie only with top-level GETs from elsewhere, and GETs change nothing; every
    # POST also needs the CSRF token.
    secure = request.url.scheme == "https" or settings.public_url.startswith("https://")
    response.set_cookie(COOKIE, cookie, max_age=codec(request).lifetime, path=pages.base(request),
                        httponly=True, samesite="lax", secure=secure)
    return response


def _sign_in_page(request: Request, *, next: str, status_code: int = 200, error: str | None = None,
                  unsent: drafts.Unsent | None = None) -> Response:
    """``unsent``: a form of an alert's page sent after its session ended, carried through the sign-in
    form (never a URL) to the alert's page (_keep_unsent)."""
    notice = None if unsent is None else (f"Your session had ended, so {NOT_RECORDED[unsent.action]}. "
                                          "Sign in again, then send it from the alert's page.")
    return pages.render(request, "sign_in.html", status_code=status_code, next=next, error=error, notice=notice,
                        unsent=None if unsent is None else unsent.fields(), open_mode=codec(request).open_mode)


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep, csrf_token: CsrfToken = "") -> Response:
    check_form(request, session, csrf_token)
    remaining = max(1, session.expires - int(time.time()))
    await guarded(request.app.state.store.redis.set(keys.ui_signed_out(session.nonce), 1, ex=remaining))
    response = pages.redirect(f"{pages.base(request)}/sign-in")
    response.delete_cookie(COOKIE, path=pages.base(request), httponly=True, samesite="lax")
    return response


# --- alerts ----------------------------------------------------------------------------------


@router.get("/")
@forwards_query
async def list_with_a_slash(request: Request) -> Response:
    """/ui/ as people type it: the list (the app redirects no other trailing slash: service/app.py)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return pages.redirect(f"{pages.base(request)}{query}")


@router.get("")
async def alert_list(request: Request, session: SessionDep, alerts: AlertsDep, status: str = "unresolved",
                     source: str = "live", type: str = "any", user_id: Annotated[str, Query(max_length=128)] = "",
                     cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The reviewers' queue: by default the alerts nobody has resolved (open or acknowledged: an
    acknowledged one left the default view, and an abandoned acknowledgement hid it from the next
    shift), live ones (a backfill's history buried them: an outside review)."""
    filters = {"status": status, "source": source, "type": type, "user_id": user_id}
    for name, value in filters.items():
        if name != "user_id" and value not in LIST_FILTERS[name]:
            raise BadRequest(f"{name} must be one of {', '.join(LIST_FILTERS[name])}")
    if user_id and not ID_PATTERN.fullmatch(user_id):
        raise BadRequest("user_id: 1-128 characters of A-Z a-z 0-9 . _ : @ -")
    # a cursor that is not one of ours: BadRequest, a page as every /ui error (error_pages.py)
    found, next_cursor = await alerts.list(
        status=LIST_STATUSES[status], user_id=user_id or None, type=None if type == "any" else type,
        backfill={"live": False, "backfill": True, "all": None}[source], limit=PAGE_SIZE, cursor=cursor)
    return pages.render(request, "alerts.html", alerts=found, filters=filters, choices=LIST_FILTERS,
                        query=urlencode({k: v for k, v in filters.items() if v}), next_cursor=next_cursor,
                        first_page=cursor is None, scan_limit=SCAN_LIMIT)


@router.get("/alerts/{alert_id}")
async def alert_page(alert_id: str, request: Request, session: SessionDep, alerts: AlertsDep,
                     done: str | None = None) -> Response:
    alert = await _load(alerts, alert_id)
    draft = await drafts.take(request.app.state.store.redis, session.nonce, alert_id)
    # the posts the picture beside it draws: is the alert's own post among them? (timeline_view.py)
    picture = timeline_view.view(alert, await request.app.state.store.timeline(alert["user_id"], PICTURE_POSTS))
    # ?done= only says which form just answered; anyone can write it into a link, so the status line
    # is shown only when the alert really is in that state (never "resolved" beside Status "open")
    return _alert(request, session, alert, draft=draft, picture=picture,
                  done=done if done in ("acknowledged", "resolved") and done == alert["status"] else None)


@router.get("/alerts/{alert_id}/acknowledge")
@router.get("/alerts/{alert_id}/resolve")
async def form_address(alert_id: str, request: Request) -> Response:
    """A form's address, reloaded or copied from the address bar: the alert's page (a GET does nothing)."""
    return pages.redirect(_page_of(request, alert_id))


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: str, request: Request, session: FormSessionDep, alerts: AlertsDep,
                      csrf_token: CsrfToken = "", seal: FormField = "") -> Response:
    if session is None or not codec(request).csrf_ok(session, csrf_token):
        return await _not_taken(request, session, drafts.Unsent(alert_id, "acknowledge", seal=seal))
    if (refused := await _counted(request, session, alert_id, "acknowledge")) is not None:
        return refused
    try:
        await alerts.acknowledge(_valid(alert_id))
    except AlertNotFound:
        raise _gone(alert_id, "acknowledge") from None
    except Conflict as exc:  # a resolved alert: say why, on its page
        return await _refused(request, session, alert_id, drafts.Draft(exc.message))
    return pages.redirect(f"{_page_of(request, alert_id)}?done=acknowledged")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(alert_id: str, request: Request, session: FormSessionDep, alerts: AlertsDep,
                  csrf_token: CsrfToken = "", verdict: FormField = "", note: FormField = "",
                  seal: FormField = "") -> Response:
    if session is None or not codec(request).csrf_ok(session, csrf_token):
        return await _not_taken(request, session, drafts.Unsent(alert_id, "resolve", verdict, note, seal))
    if (refused := await _counted(request, session, alert_id, "resolve", verdict, note)) is not None:
        return refused
    try:
        if verdict not in VERDICTS:
            await _load(alerts, alert_id)  # no such alert: not found, before the verdict is asked for
            return await _refused(request, session, alert_id,
                                  drafts.Draft("Choose a verdict to resolve the alert.", None, note))
        await alerts.resolve(_valid(alert_id), verdict, note.strip() or None)
    except AlertNotFound:
        raise _gone(alert_id, "resolve") from None
    except Conflict as exc:  # judged meanwhile: whose verdict stands, and that this one was not recorded
        return await _refused(request, session, alert_id, drafts.Draft(
            f"Your verdict was not recorded: {exc.message}. Reload to see the verdict that stands.", verdict, note))
    except Unprocessable as exc:  # a note too long
        return await _refused(request, session, alert_id, drafts.Draft(exc.message, verdict, note))
    return pages.redirect(f"{_page_of(request, alert_id)}?done=resolved")


async def _counted(request: Request, session: Session, alert_id: str, action: str, verdict: str = "",
                   note: str = "") -> Response | None:
    """A form counted against its key's rate limit; past it, back to the alert's page with the form as
    it was filled (a rate-limited verdict was a bare "Too many requests" page that lost the note)."""
    try:
        await count(request, session)
    except RateLimited as exc:
        said = NOT_RECORDED[action]
        return await _refused(request, session, _valid(alert_id), drafts.Draft(
            f"{said[0].upper()}{said[1:]}: {exc.message}. Send it again in a moment.",
            verdict if verdict in VERDICTS else None, note))
    return None


def _gone(alert_id: str, action: str) -> NotFound:
    """A form for an alert that is gone: its user was erased (or expired) while the page was open."""
    return NotFound(f"No alert {alert_id} exists any more: its user was erased, or their data expired. "
                    f"Nothing was recorded ({NOT_RECORDED[action]}).")


# what a form that was not taken did not do, in the words of the page
NOT_RECORDED = {"acknowledge": "the alert was not acknowledged", "resolve": "your verdict was not recorded"}


async def _not_taken(request: Request, session: Session | None, unsent: drafts.Unsent) -> Response:
    """A form of an alert's page without a valid session or without its CSRF token. It changes nothing.
    Sent after its session ended (expired, signed out in another tab): sign in again, and the alert's
    page holds it. From a page older than this session (signed out and in again elsewhere), sealed for
    this key: back to the alert's page, which holds it. Anything else: refused (another site's forgery)."""
    _valid(unsent.alert)
    if session is None:
        return _sign_in_page(request, status_code=401, next=_page_of(request, unsent.alert), unsent=unsent)
    if not codec(request).sealed(unsent.seal, session, time.time()):
        raise FormRefused()
    await _keep_unsent(request, session, unsent, "the page was older than your sign-in", sealed=True)
    return pages.redirect(_page_of(request, unsent.alert))


async def _keep_unsent(request: Request, session: Session, unsent: drafts.Unsent, why: str, *,
                       sealed: bool) -> None:
    """Keep a form that was not taken for its alert's page, which says so. What it held (the verdict,
    the note) only when ``sealed``: its seal shows it was rendered for this key (sessions.py; the caller
    checked it once): a forged form's content is never put before the analyst as if they had typed it."""
    try:  # its user erased meanwhile: nothing about them is kept (drafts.forget ran already)
        await request.app.state.alerts.get(unsent.alert)
    except NotFound:
        return
    said = NOT_RECORDED[unsent.action]
    draft = drafts.Draft(f"{said[0].upper()}{said[1:]}: {why}. Send it again.",
                         unsent.verdict if sealed and unsent.verdict in VERDICTS else None,
                         unsent.note if sealed else "")
    await drafts.keep(request.app.state.store.redis, session.nonce, unsent.alert, draft)


async def _refused(request: Request, session: Session, alert_id: str, draft: drafts.Draft) -> Response:
    """Back to the alert's page, which says why and holds the form as it was filled (drafts.py): at its
    own address, where a reload posts nothing again."""
    await drafts.keep(request.app.state.store.redis, session.nonce, alert_id, draft)
    return pages.redirect(_page_of(request, alert_id))


def _page_of(request: Request, alert_id: str) -> str:
    return f"{pages.base(request)}/alerts/{quote(alert_id, safe='')}"


def _valid(alert_id: str) -> str:
    if not ID_PATTERN.fullmatch(alert_id):
        raise NotFound(f"no alert {alert_id}")
    return alert_id


async def _load(alerts: AlertStore, alert_id: str) -> dict[str, Any]:
    try:
        return await alerts.get(_valid(alert_id))
    except AlertNotFound:
        raise NotFound(f"No alert {alert_id}: there never was one, or its user was erased or their data "
                       "expired.") from None


def _alert(request: Request, session: Session, alert: dict[str, Any], *, picture: timeline_view.TimelineView,
           done: str | None = None, draft: drafts.Draft | None = None) -> Response:
    before, after = alert["before"]["distribution"], alert["after"]["distribution"]
    rows = [{"label": label, "valence": VALENCE[label], "before": before.get(label, 0.0),
             "after": after.get(label, 0.0)} for label in LABELS]
    # in the words of the alert's reason line ("mixed, happy leading"), by the rule that wrote it
    moods = {side: evidence.describe([row[side] for row in rows]) for side in ("before", "after")}
    return pages.render(request, "alert.html", form_seal=codec(request).seal(session), raised_by_text=RAISED_BY,
                        ended_by_text=ENDED_BY,
                        alert=alert, rows=rows, moods=moods, verdicts=VERDICT_WORDS[alert["type"]], note_max=lifecycle.NOTE_MAX_CHARS,
                        svg_width=timeline_svg.WIDTH, svg_height=timeline_svg.HEIGHT, picture=picture, done=done,
                        draft=draft)


@router.get("/users/{user_id}/timeline.svg")
async def timeline(user_id: UserId, session: PictureSessionDep, store: StoreDep, pipeline: PipelineDep,
                   alert: Annotated[str | None, Query(max_length=128)] = None) -> Response:
    """The user's picture for the alert page: the API's /v1/users/{id}/timeline.svg, behind the session;
    ``alert``: the page's alert, whose marker it labels."""
    posts = await store.timeline(user_id, PICTURE_POSTS)
    if not posts:
        raise NotFound(f"no posts for user {user_id}")
    return Response(await pipeline.picture(user_id, posts, alert), media_type="image/svg+xml", headers=pages.HEADERS)


@router.get("/static/ui.css")
async def stylesheet() -> Response:
    return pages.stylesheet()


@router.get("/static/favicon.svg")
async def favicon() -> Response:
    return pages.favicon()


# --- wiring ----------------------------------------------------------------------------------


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return pages.redirect(f"{pages.base(request)}/sign-in?next={quote(exc.next_url, safe='')}")


async def _form_refused(request: Request, exc: Exception) -> Response:
    return pages.render(request, "error.html", status_code=403, title="Form refused",
                        message="This form did not come from this page of your session (it may be older than "
                                "your sign-in). Go back, reload the page and try again.")


def install(app: FastAPI) -> None:
    app.state.ui_sessions = SessionCodec.from_settings(app.state.settings)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(FormRefused, _form_refused)
    error_pages.install(app)  # errors under /ui as pages, with the headers
    app.include_router(router)
    # the timeline picture opened on its own (a new tab) names no icon: the browser asks the site's root
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
