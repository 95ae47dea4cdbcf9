"""The /ui pages that show alerts: the reviewers' queue, an alert's page and the user's picture; and
the wiring of every /ui router (sign_in.py: signing in and out; forms.py: the alert page's forms).

Every page needs a session (signed_in.py); GETs change nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, cast, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response

from service import calibration, evidence, timeline_svg
from service.errors import BadRequest, NotFound
from service.alerts import lifecycle
from service.alerts.store import SCAN_LIMIT
from service.routes.deps import AlertsDep, PipelineDep, StoreDep, UserId
from service.schemas import ID_PATTERN, ID_RULE
from service.emotions import LABELS, VALENCE
from service.ui import drafts, error_pages, pages, timeline_view
from service.ui import forms, sign_in
from service.ui.forms import keep_draft, load
from service.ui.sessions import Session, SessionCodec
from service.ui.signed_in import FormRefused, SessionDep, SignInRequired, UncountedSessionDep, codec, count
from service.ui.words import ENDED_BY, RAISED_BY, RESOLUTIONS, VERDICT_WORDS


router = APIRouter(prefix="/ui", include_in_schema=False)

# the list's filters: each one's choices, the first its default
LIST_STATUSES: dict[str, tuple[str, ...] | None] = {"unresolved": ("open", "acknowledged"),
                                                    **{status: (status,) for status in lifecycle.STATUSES}, "all": None}
LIST_SOURCES = {"live": False, "backfill": True, "all": None}  # the choice -> the listing's backfill filter
LIST_FILTERS = {"status": tuple(LIST_STATUSES), "source": tuple(LIST_SOURCES),
                "type": ("any", *get_args(lifecycle.EventType)), "direction": ("any", *get_args(lifecycle.Direction))}
PAGE_SIZE = 50
# from this factor on, the queue says live calibration holds alerts back (docs/live_calibration.md)
HELD_BACK_NOTICE_SCALE = 1.5


# --- alerts ----------------------------------------------------------------------------------


@router.get("/")
async def list_with_a_slash(request: Request) -> Response:
    """/ui/ as people type it: the list (the app redirects no other trailing slash: service/app.py)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return pages.redirect(f"{pages.base(request)}{query}")


@router.get("")
async def alert_list(request: Request, session: SessionDep, alerts: AlertsDep, status: str = "unresolved",
                     source: str = "live", type: str = "any", direction: str = "any",
                     user_id: Annotated[str, Query(max_length=256)] = "",  # 128 once trimmed (ID_PATTERN)
                     cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """The reviewers' queue: by default the alerts nobody has resolved (open or acknowledged: an
    acknowledged one left the default view, and an abandoned acknowledgement hid it from the next
    shift), live ones (a backfill's history buried them: an outside review)."""
    user_id = user_id.strip()  # typed or pasted with a space: "Bad link", and the filter form gone (an audit)
    filters = {"status": status, "source": source, "type": type, "direction": direction, "user_id": user_id}
    for name, value in filters.items():
        if name != "user_id" and value not in LIST_FILTERS[name]:
            raise BadRequest(f"{name} must be one of {', '.join(LIST_FILTERS[name])}")
    if user_id and not ID_PATTERN.fullmatch(user_id):
        raise BadRequest(f"user_id must be {ID_RULE}")
    # a cursor that is not one of ours: BadRequest, a page as every /ui error (error_pages.py)
    found, next_cursor = await alerts.list(
        status=LIST_STATUSES[status], user_id=user_id or None, type=None if type == "any" else type,
        backfill=LIST_SOURCES[source], direction=None if direction == "any" else cast(lifecycle.Direction, direction),
        limit=PAGE_SIZE, cursor=cursor)
    return pages.render(request, "alerts.html", alerts=found, ended=await alerts.ends_of(found), filters=filters,
                        choices=LIST_FILTERS,
                        query=urlencode({k: v for k, v in filters.items() if v}), next_cursor=next_cursor,
                        first_page=cursor is None, scan_limit=SCAN_LIMIT, held_back=_held_back(request))


def _held_back(request: Request) -> dict[str, Any] | None:
    """How far live calibration has raised the thresholds, when that is far enough for reviewers to know that
    fewer alerts reach them than the model alone would raise (a population with many real changes pushed the
    scale to 2.94 and a plain happy-to-sad change raised nothing: an audit). None: not that far."""
    pipeline = getattr(request.app.state, "pipeline", None)
    if pipeline is None or (scale := pipeline.live.largest_scale()) < HELD_BACK_NOTICE_SCALE:
        return None
    return {"scale": scale, "bound": calibration.MAX_SCALE, "target": pipeline.live.target,
            "source": pipeline.live.largest_source()}


@router.get("/alerts/{alert_id}")
async def alert_page(alert_id: str, request: Request, session: UncountedSessionDep, alerts: AlertsDep,
                     done: str | None = None) -> Response:
    # the page a form redirected to holds that form's draft (or its empty marker): the form was counted
    # against the rate limit, this showing of its answer is not (a 429 hid a verdict just recorded)
    redis = request.app.state.store.redis
    draft = await drafts.take(redis, session.nonce, alert_id)
    if draft is not None and draft.message and done is not None:
        # another tab's refused form (drafts are kept per alert and session): this tab's form was taken
        # (?done=), that one's page will show it: put it back (a re-audit saw the two tabs' answers swapped)
        await keep_draft(request, session, alert_id, draft)
        draft = None
    if draft is None:
        await count(request, session)
    elif not draft.message:
        draft = None
    alert = await load(alerts, alert_id)
    # the posts the picture beside it draws: is the alert's own post among them? (timeline_view.py)
    picture = timeline_view.view(alert, await request.app.state.store.timeline(alert["user_id"], timeline_svg.POSTS))
    # ?done= only says which form just answered; anyone can write it into a link, so the status line
    # is shown only when the alert really is in that state (never "resolved" beside Status "open")
    other_end, later = await alerts.episode(alert)
    return _alert(request, session, alert, draft=draft, picture=picture, other_end=other_end, later=later,
                  done=done if done in ("acknowledged", "resolved") and done == alert["status"] else None)


def _alert(request: Request, session: Session, alert: dict[str, Any], *, picture: timeline_view.TimelineView,
           other_end: dict[str, Any] | None = None, done: str | None = None,
           draft: drafts.Draft | None = None, later: dict[str, Any] | None = None) -> Response:
    before, after = alert["before"]["distribution"], alert["after"]["distribution"]
    rows = [{"label": label, "valence": VALENCE[label], "before": before.get(label, 0.0),
             "after": after.get(label, 0.0)} for label in LABELS]
    # in the words of the alert's reason line ("mixed, happy leading"), by the rule that wrote it
    moods = {side: evidence.describe([row[side] for row in rows]) for side in ("before", "after")}
    return pages.render(request, "alert.html", form_seal=codec(request).seal(session), raised_by_text=RAISED_BY,
                        ended_by_text=ENDED_BY, resolution_text=RESOLUTIONS,
                        alert=alert, rows=rows, moods=moods, verdicts=VERDICT_WORDS[alert["type"]], note_max=lifecycle.NOTE_MAX_CHARS,
                        svg_width=timeline_svg.WIDTH, svg_height=timeline_svg.HEIGHT, picture=picture, done=done,
                        draft=draft, other_end=other_end, later=later)


@router.get("/users/{user_id}/timeline.svg")
async def timeline(request: Request, user_id: UserId, session: UncountedSessionDep, store: StoreDep, pipeline: PipelineDep,
                   alert: Annotated[str | None, Query(max_length=128)] = None) -> Response:
    """The user's picture for the alert page: the API's /v1/users/{id}/timeline.svg, behind the session;
    ``alert``: the page's alert, whose marker it labels. Counted in a window of its own (rate_limit.py)."""
    if (limiter := getattr(request.app.state, "rate_limiter", None)) is not None:
        await limiter.check_picture(session.key_id)
    posts = await store.timeline(user_id, timeline_svg.POSTS)
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
    for ui_router in ROUTERS:
        app.include_router(ui_router)
    # the timeline picture opened on its own (a new tab) names no icon: the browser asks the site's root
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)


ROUTERS = (sign_in.router, router, forms.router)  # app.py labels a refused body with their routes
