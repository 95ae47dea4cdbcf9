"""Typed dependencies: what a handler needs, taken from the app state built in the lifespan.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool, a
thread hop per dependency per request (its cost: docs/performance.md, "Figures behind choices in the code").
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials

from service.alerts.store import AlertStore
from service.config import Settings
from service.errors import DeliveryNotFound, Forbidden, InvalidId, ModelUnavailable, Unauthorized, WebhookNotFound
from service.openapi import API_KEY_HEADER, BEARER
from service.pipeline import Pipeline
from service.schemas import ID_PATTERN, ID_RULE
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


Scope = Literal["ingest", "admin"]


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _matches(given: str, keys: list[str]) -> bool:
    # compare against every key, always: the time taken says nothing about which one nearly matched
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def require_scope(scope: Scope) -> Callable[..., Awaitable[None]]:
    """A dependency: once keys are configured, the route needs a key with ``scope``.

    ``Authorization: Bearer <key>`` (or ``X-API-Key``); 401 without a valid key, 403 when the key
    lacks the scope; admin keys hold both scopes. Then the per-key rate limit, if configured.
    """

    # The two security dependencies declare the ways to send a key in OpenAPI (generated clients read
    # them); the key itself is taken by _presented_key, whose rules the tests pin down.
    async def check(request: Request,
                    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
                    _header: Annotated[str | None, Depends(API_KEY_HEADER)]) -> None:
        settings: Settings = request.app.state.settings
        if not settings.api_keys and not settings.admin_api_keys:
            return
        given = _presented_key(request)
        if given is None:
            raise Unauthorized("missing API key: send Authorization: Bearer <key>")
        is_admin = _matches(given, settings.admin_api_keys)
        if not is_admin and not _matches(given, settings.api_keys):
            raise Unauthorized("invalid API key")
        if scope == "admin" and not is_admin:
            raise Forbidden("this API key has the ingest scope; the route needs admin")
        limiter = getattr(request.app.state, "rate_limiter", None)
        # A route may need both scopes' checks (a router's `ingest` and its own `admin`, as DELETE
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


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
StoreDep = Annotated[StateStore, Depends(get_store)]
AlertsDep = Annotated[AlertStore, Depends(get_alerts)]
UserId = Annotated[str, Depends(user_id_param)]
ApiKey = Depends(require_scope("ingest"))
AdminKey = Depends(require_scope("admin"))
WebhookId = Annotated[str, Depends(webhook_id_param)]
DeliveryId = Annotated[str, Depends(delivery_id_param)]
SubscriptionsDep = Annotated[Subscriptions, Depends(get_subscriptions)]
DeliveriesDep = Annotated[Deliveries, Depends(get_deliveries)]
