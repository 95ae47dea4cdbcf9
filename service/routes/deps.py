"""Typed dependencies: what a handler needs, taken from the app state built in the lifespan.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a
thread hop per dependency per request (its cost: docs/performance.md, "Figures behind choices in the code").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials

from service import access
from service.access import Scope
from service.alerts.store import AlertStore
from service.config import Settings
from service.errors import (
    DeliveryNotFound, Forbidden, InvalidId, ModelUnavailable, Unauthorized, Unprocessable, UnsupportedMediaType,
    WebhookNotFound,
)
from service.openapi import API_KEY_HEADER, BEARER
from service.pipeline import Pipeline
from service.schemas import ID_PATTERN, ID_RULE, check_new_user_id
from service.state_store import StateStore
from service.webhooks.deliveries import ID_PATTERN as DELIVERY_ID
from service.webhooks.deliveries import Deliveries
from service.webhooks.subscriptions import ID_PATTERN as WEBHOOK_ID
from service.webhooks.subscriptions import Subscriptions


# app.state's attributes are Any to the type checker: each getter names the type the lifespan built.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline | None = getattr(request.app.state, "pipeline", None)
    if pipeline is None:
        raise ModelUnavailable("the service is starting")
    return pipeline


async def get_store(request: Request) -> StateStore:
    store: StateStore = request.app.state.store
    return store


async def get_alerts(request: Request) -> AlertStore:
    alerts: AlertStore = request.app.state.alerts
    return alerts


async def get_subscriptions(request: Request) -> Subscriptions:
    subscriptions: Subscriptions = request.app.state.webhooks
    return subscriptions


async def get_deliveries(request: Request) -> Deliveries:
    deliveries: Deliveries = request.app.state.deliveries
    return deliveries


def media_type(request: Request) -> str:
    """The request's content type without parameters, lower case ("" when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def require_json(request: Request) -> None:
    """JSON routes refuse another declared media type (415) instead of failing to validate it. Every route
    with a JSON body takes it (tests/test_hostile_input.py checks the OpenAPI schema for one without)."""
    content_type = media_type(request)
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(f"send application/json, not {content_type}")


# A path id that Subscriptions.create or delivery_id() cannot have made is not found, before it reaches
# a key: "<id>:dlv" named the subscription's delivery log (GET 500, DELETE wiped the log).
WEBHOOK_ID_SCHEMA = {"pattern": f"^{WEBHOOK_ID.pattern}$"}
DELIVERY_ID_SCHEMA = {"pattern": f"^{DELIVERY_ID.pattern}$"}


async def webhook_id_param(webhook_id: Annotated[str, Path(json_schema_extra=WEBHOOK_ID_SCHEMA)]) -> str:
    if not WEBHOOK_ID.fullmatch(webhook_id):
        raise WebhookNotFound(f"no webhook {webhook_id[:64]}")
    return webhook_id


async def delivery_id_param(webhook_id: Annotated[str, Depends(webhook_id_param)],
                            delivery_id: Annotated[str, Path(json_schema_extra=DELIVERY_ID_SCHEMA)]) -> str:
    if not DELIVERY_ID.fullmatch(delivery_id):
        raise DeliveryNotFound(f"no delivery {delivery_id[:64]} for webhook {webhook_id}")
    return delivery_id


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included (only asked of a request that has
    a query string: a post has none)."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def known_query(request: Request) -> None:
    """An unknown or repeated query parameter of an API route is a 422, like an unknown body field:
    ignored, a typo (``?statuss=open``, ``?backfil=false``) ran the listing unfiltered and answered 200,
    and of ``?status=open&status=resolved`` the last won (audits). Not under /ui: links to its pages get
    tracking parameters added by mail and chat tools. A request without a valid key is left to the key
    check, whose 401 comes first (a 422 would describe the API to anyone)."""
    route = request.scope.get("route")
    if not request.scope.get("query_string") or not isinstance(route, APIRoute) or not route.path.startswith("/v1"):
        return
    settings: Settings = request.app.state.settings
    if access.configured(settings) and access.kind_of(settings, _presented_key(request) or "") is None:
        return
    names = [name for name, _ in request.query_params.multi_items()]
    problems = [{"loc": ("query", name), "msg": "Extra inputs are not permitted"}
                for name in sorted(set(names) - _query_names(route.dependant))]
    problems += Unprocessable.given_twice("query", names)
    if problems:
        raise Unprocessable.of(problems)


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def acting_key(request: Request) -> str | None:
    """The label of the key this request presented (access.key_label), recorded on what it changes: who
    judged an alert. None without keys configured (nobody is told apart then)."""
    key = _presented_key(request)
    settings: Settings = request.app.state.settings
    return access.key_label(key) if key is not None and access.configured(settings) else None


def require_scope(scope: Scope) -> Callable[..., Awaitable[None]]:
    """A dependency: once keys are configured, the route needs a key whose kind holds ``scope``
    (service/access.py: ingest keys hold ``ingest`` and ``read``, reviewer keys ``read`` and ``review``,
    admin keys every scope).

    ``Authorization: Bearer <key>`` (or ``X-API-Key``); 401 without a valid key, 403 when the key
    lacks the scope. Then the per-key rate limit, if configured.
    """

    # The two security dependencies declare the ways to send a key in OpenAPI (generated clients read
    # them); the key itself is taken by _presented_key, whose rules the tests pin down.
    # The scope is named in each: OpenAPI 3.1 lets a security requirement list the role names an
    # operation needs, so the schema (and docs/access.md, written from it) says which key each route takes.
    async def check(request: Request,
                    _bearer: HTTPAuthorizationCredentials | None = Security(BEARER, scopes=[scope]),
                    _header: str | None = Security(API_KEY_HEADER, scopes=[scope])) -> None:
        settings: Settings = request.app.state.settings
        if not access.configured(settings):
            return
        given = _presented_key(request)
        if given is None:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        kind = access.kind_of(settings, given)
        if kind is None:
            raise Unauthorized("invalid API key")
        if scope not in access.KINDS[kind]:
            holders = " or ".join(access.kinds_with(scope))
            raise Forbidden(f"this API key ({kind}) holds the scopes {', '.join(access.KINDS[kind])}; "
                            f"the route needs {scope} ({holders} keys)")
        limiter = getattr(request.app.state, "rate_limiter", None)
        # A route may need two scopes' checks (a router's `read` and its own `admin`, as DELETE
        # /v1/users/{id}): the request is still one request, counted once.
        if limiter is not None and not getattr(request.state, "rate_counted", False):
            request.state.rate_counted = True
            await limiter.check(given)

    return check


# The pattern is only documented (OpenAPI, fuzzing); the check below answers 400 invalid_id itself.
async def user_id_param(user_id: Annotated[str, Path(description=ID_RULE, json_schema_extra={
        "pattern": ID_PATTERN.pattern, "minLength": 1, "maxLength": 128})]) -> str:
    if not ID_PATTERN.fullmatch(user_id):
        raise InvalidId(f"user_id must be {ID_RULE}")
    return user_id


async def new_user_id_param(user_id: Annotated[str, Depends(user_id_param)]) -> str:
    """The path's user id where a post writes the user: not only dots (schemas.DOTS_RULE)."""
    try:
        return check_new_user_id(user_id)
    except ValueError as exc:
        raise InvalidId(f"user_id {exc}") from exc


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
StoreDep = Annotated[StateStore, Depends(get_store)]
AlertsDep = Annotated[AlertStore, Depends(get_alerts)]
UserId = Annotated[str, Depends(user_id_param)]
NewUserId = Annotated[str, Depends(new_user_id_param)]
ApiKey = Depends(require_scope("ingest"))
ReadKey = Depends(require_scope("read"))
ReviewKey = Depends(require_scope("review"))
AdminKey = Depends(require_scope("admin"))
JsonBody = Depends(require_json)
ActingKey = Annotated[str | None, Depends(acting_key)]
KnownQuery = Depends(known_query)
WebhookId = Annotated[str, Depends(webhook_id_param)]
DeliveryId = Annotated[str, Depends(delivery_id_param)]
SubscriptionsDep = Annotated[Subscriptions, Depends(get_subscriptions)]
DeliveriesDep = Annotated[Deliveries, Depends(get_deliveries)]
