"""Webhook subscriptions, their delivery log, replay, and operations: rotate the secret, enable again,
send a test event (Standard Webhooks 1.0)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import re

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from service.drift import Event
from service.errors import (
    DeliveryNotFound, DeliveryNotReplayable, InvalidWebhookUrl, WebhookDisabled, WebhookNotFound,
)
from service.routes.deps import AdminKey, SettingsDep
from service.webhooks import signing
from service.webhooks.deliveries import Deliveries, delivery_id
from service.webhooks.events import new_test_event
from service.webhooks.subscriptions import Subscription, Subscriptions
from service.webhooks.urls import check_url, has_credentials

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[AdminKey])  # subscriptions hold secrets


class WebhookCreate(BaseModel):
    url: str = Field(description="http(s) receiver; private addresses only when the operator allows them")
    events: list[Event] = Field(min_length=1, description="event types to receive")
    secret: str | None = Field(None, description="whsec_ + base64 of 24-64 bytes; generated when absent")

    @field_validator("secret")
    @classmethod
    def _secret_is_whsec(cls, value: str | None) -> str | None:
        if value is not None:
            signing.secret_key(value)  # ValueError -> 422 with the reason
        return value


class WebhookView(BaseModel):
    id: str
    url: str
    events: list[str]
    status: Literal["enabled", "disabled"]
    created_at: str
    disabled_reason: str | None = None
    previous_secret_expires_at: str | None = Field(
        None, description="after a rotation: until then deliveries carry a signature with the previous secret too")


class WebhookCreated(WebhookView):
    secret: str = Field(description="shown in this response only: keep it to verify signatures")


class SecretRotation(BaseModel):
    secret: str | None = Field(None, description="the new secret (whsec_ + base64 of 24-64 bytes); generated when absent")
    grace_seconds: int | None = Field(
        None, ge=0, le=7 * 24 * 3600,
        description="how long deliveries are signed with the previous secret too; default EMODRIFT_WEBHOOK_SECRET_GRACE_SECONDS")

    @field_validator("secret")
    @classmethod
    def _secret_is_whsec(cls, value: str | None) -> str | None:
        if value is not None:
            signing.secret_key(value)
        return value


class WebhookList(BaseModel):
    webhooks: list[WebhookView]


class Attempt(BaseModel):
    attempt: int
    at: str
    status_code: int | None
    error: str | None
    latency_ms: float
    result: Literal["delivered", "retry", "failed", "gone"]
    response: str | None = None
    retry_after_s: float | None = None
    next_attempt_at: str | None = None


class DeliveryView(BaseModel):
    id: str
    webhook_id: str = Field(description="the webhook-id header: the same on every attempt")
    event_id: str
    type: str
    status: Literal["pending", "delivered", "dead_lettered", "disabled", "cancelled"]
    reason: str | None
    created_at: str
    next_attempt_at: str | None
    finished_at: str | None
    replays: int
    attempts: list[Attempt]


class DeliveryLog(BaseModel):
    webhook_id: str
    deliveries: list[DeliveryView]


async def get_subscriptions(request: Request) -> Subscriptions:
    subscriptions: Subscriptions = request.app.state.webhooks  # app.state's attributes are Any
    return subscriptions


async def get_deliveries(request: Request) -> Deliveries:
    deliveries: Deliveries = request.app.state.deliveries
    return deliveries


# What Subscriptions.create and delivery_id() make. A path id that cannot be one is not found, before
# it reaches a key: "<id>:dlv" named the subscription's delivery log (GET 500, DELETE wiped the log).
WEBHOOK_ID = re.compile(r"wh_[0-9a-f]{24}")
DELIVERY_ID = re.compile(r"dlv_[0-9a-f]{24}")


async def webhook_id_param(webhook_id: Annotated[str, Path(json_schema_extra={"pattern": "^wh_[0-9a-f]{24}$"})]) -> str:
    if not WEBHOOK_ID.fullmatch(webhook_id):
        raise WebhookNotFound(f"no webhook {webhook_id[:64]}")
    return webhook_id


async def delivery_id_param(webhook_id: Annotated[str, Depends(webhook_id_param)],
                            delivery_id: Annotated[str, Path(json_schema_extra={"pattern": "^dlv_[0-9a-f]{24}$"})]) -> str:
    if not DELIVERY_ID.fullmatch(delivery_id):
        raise DeliveryNotFound(f"no delivery {delivery_id[:64]} for webhook {webhook_id}")
    return delivery_id


WebhookId = Annotated[str, Depends(webhook_id_param)]
DeliveryId = Annotated[str, Depends(delivery_id_param)]
SubscriptionsDep = Annotated[Subscriptions, Depends(get_subscriptions)]
DeliveriesDep = Annotated[Deliveries, Depends(get_deliveries)]


async def _existing(subscriptions: Subscriptions, webhook_id: str) -> Subscription:
    sub = await subscriptions.get(webhook_id)
    if sub is None:
        raise WebhookNotFound(f"no webhook {webhook_id}")
    return sub


@router.post("", status_code=201, response_model=WebhookCreated, summary="Subscribe a receiver")
async def create_webhook(body: WebhookCreate, subscriptions: SubscriptionsDep, settings: SettingsDep) -> dict[str, Any]:
    if has_credentials(body.url):
        # stored in clear and shown by GET: the signature authenticates us to the receiver
        raise InvalidWebhookUrl("url must not carry credentials (user:password@); verify the webhook signature instead")
    url = await check_url(body.url, allow_private=settings.webhook_allow_private_urls)
    sub = await subscriptions.create(url, list(body.events), body.secret or signing.generate_secret())
    return {**sub.public(), "secret": sub.secret}


@router.get("", response_model=WebhookList, summary="Every subscription (without secrets)")
async def list_webhooks(subscriptions: SubscriptionsDep) -> dict[str, Any]:
    return {"webhooks": [sub.public() for sub in await subscriptions.all()]}


@router.get("/{webhook_id}", response_model=WebhookView, summary="One subscription (without its secret)")
async def get_webhook(webhook_id: WebhookId, subscriptions: SubscriptionsDep) -> dict[str, Any]:
    return (await _existing(subscriptions, webhook_id)).public()


@router.delete("/{webhook_id}", status_code=204, summary="Unsubscribe; pending deliveries are cancelled")
async def delete_webhook(webhook_id: WebhookId, subscriptions: SubscriptionsDep) -> None:
    if not await subscriptions.delete(webhook_id):
        raise WebhookNotFound(f"no webhook {webhook_id}")


@router.get("/{webhook_id}/deliveries", response_model=DeliveryLog, summary="Deliveries, newest first, with attempts")
async def list_deliveries(webhook_id: WebhookId, subscriptions: SubscriptionsDep, deliveries: DeliveriesDep,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    await _existing(subscriptions, webhook_id)
    return {"webhook_id": webhook_id, "deliveries": await deliveries.log(webhook_id, limit)}


@router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryView, summary="One delivery")
async def get_delivery(webhook_id: WebhookId, delivery_id: DeliveryId, subscriptions: SubscriptionsDep,
                       deliveries: DeliveriesDep) -> dict[str, Any]:
    await _existing(subscriptions, webhook_id)
    found = await deliveries.log(webhook_id, 1, only=delivery_id)
    if not found:
        raise DeliveryNotFound(f"no delivery {delivery_id} for webhook {webhook_id}")
    return found[0]


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", status_code=202, response_model=DeliveryView,
             summary="Replay a finished delivery now: a new attempt, the same webhook-id, a fresh schedule")
async def retry_delivery(webhook_id: WebhookId, delivery_id: DeliveryId, request: Request, subscriptions: SubscriptionsDep,
                         deliveries: DeliveriesDep) -> dict[str, Any]:
    await _existing(subscriptions, webhook_id)
    if not await deliveries.log(webhook_id, 1, only=delivery_id):
        raise DeliveryNotFound(f"no delivery {delivery_id} for webhook {webhook_id}")
    outcome = await deliveries.replay(webhook_id, delivery_id)
    if outcome == "missing":
        raise DeliveryNotFound(f"no delivery {delivery_id} for webhook {webhook_id}")
    if outcome == "pending":
        raise DeliveryNotReplayable("the delivery is still pending: its next attempt is scheduled")
    if outcome == "disabled":
        raise DeliveryNotReplayable("the webhook is disabled")
    request.app.state.dispatcher.wake()
    return (await deliveries.log(webhook_id, 1, only=delivery_id))[0]


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated, name="rotate_webhook_secret",
             summary="A new signing secret, shown once; the old one keeps signing during a grace period")
async def rotate_webhook_secret(webhook_id: str, subscriptions: SubscriptionsDep, settings: SettingsDep,
                                body: SecretRotation | None = None) -> dict[str, Any]:
    body = body or SecretRotation()
    grace = settings.webhook_secret_grace_seconds if body.grace_seconds is None else body.grace_seconds
    sub = await subscriptions.rotate(webhook_id, body.secret or signing.generate_secret(), grace)
    if sub is None:
        raise WebhookNotFound(f"no webhook {webhook_id}")
    return {**sub.public(), "secret": sub.secret}


@router.post("/{webhook_id}/enable", response_model=WebhookView, name="enable_webhook",
             summary="Deliver again to a subscription that was disabled (its receiver answered 410)")
async def enable_webhook(webhook_id: str, subscriptions: SubscriptionsDep) -> dict[str, Any]:
    sub = await subscriptions.enable(webhook_id)
    if sub is None:
        raise WebhookNotFound(f"no webhook {webhook_id}")
    return sub.public()


@router.post("/{webhook_id}/test", status_code=202, response_model=DeliveryView, name="send_webhook_test",
             summary="Send a signed `webhook.test` event to this subscription now; follow it in its delivery log")
async def send_webhook_test(webhook_id: str, request: Request, subscriptions: SubscriptionsDep,
                            deliveries: DeliveriesDep) -> dict[str, Any]:
    sub = await _existing(subscriptions, webhook_id)
    if not sub.enabled:
        raise WebhookDisabled(f"webhook {webhook_id} is disabled: POST /v1/webhooks/{webhook_id}/enable first")
    event = new_test_event(sub.id)
    await deliveries.enqueue_direct(event, [sub])
    request.app.state.dispatcher.wake()
    return (await deliveries.log(sub.id, 1, only=delivery_id(sub.id, event["id"])))[0]
