"""Webhook subscriptions, their delivery log, replay, and operations: rotate the secret, enable again,
send a test event (Standard Webhooks 1.0)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from service.errors import (
    DeliveryNotFound, DeliveryNotReplayable, InvalidWebhookUrl, WebhookDisabled, WebhookNotFound,
)
from service.routes.deps import (
    AdminKey, DeliveriesDep, DeliveryId, JsonBody, SettingsDep, SubscriptionsDep, WebhookId,
)
from service.schemas import (
    BulkReplay, DeliveryLog, DeliveryStatus, DeliveryView, ReplayableStatus, SecretRotation, WebhookCreate, WebhookCreated,
    WebhookList, WebhookView,
)
from service.webhooks import signing
from service.webhooks.deliveries import delivery_id
from service.webhooks.events import new_test_event
from service.webhooks.subscriptions import Subscription, Subscriptions
from service.webhooks.urls import check_url, has_credentials

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[AdminKey])  # subscriptions hold secrets


async def _existing(subscriptions: Subscriptions, webhook_id: str) -> Subscription:
    sub = await subscriptions.get(webhook_id)
    if sub is None:
        raise WebhookNotFound(f"no webhook {webhook_id}")
    return sub


async def _enabled(subscriptions: Subscriptions, webhook_id: str) -> Subscription:
    """The subscription, to send to: a disabled one is refused, saying how to enable it."""
    sub = await _existing(subscriptions, webhook_id)
    if not sub.enabled:
        raise WebhookDisabled(f"webhook {webhook_id} is disabled: POST /v1/webhooks/{webhook_id}/enable first")
    return sub


@router.post("", status_code=201, response_model=WebhookCreated, dependencies=[JsonBody], summary="Subscribe a receiver")
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
                          limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                          status: Annotated[DeliveryStatus | None, Query(
                              description="only deliveries in this status, among the subscription's kept log "
                                          "(e.g. dead_lettered: those to replay after an outage)")] = None) -> dict[str, Any]:
    await _existing(subscriptions, webhook_id)
    return {"webhook_id": webhook_id, "subscription_id": webhook_id,
            "deliveries": await deliveries.log(webhook_id, limit, status=status)}


@router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryView, summary="One delivery")
async def get_delivery(webhook_id: WebhookId, delivery_id: DeliveryId, subscriptions: SubscriptionsDep,
                       deliveries: DeliveriesDep) -> dict[str, Any]:
    await _existing(subscriptions, webhook_id)
    found = await deliveries.log(webhook_id, 1, only=delivery_id)
    if not found:
        raise DeliveryNotFound(f"no delivery {delivery_id} for webhook {webhook_id}")
    return found[0]


@router.post("/{webhook_id}/deliveries/retry", status_code=202, response_model=BulkReplay,
             summary="Replay every delivery in a status (after an outage: dead_lettered), oldest first",
             description="Each is replayed as `POST .../deliveries/{delivery_id}/retry` replays one: a new attempt, "
                         "the same webhook-id, a fresh schedule. Among the subscription's kept log (its newest 1000 "
                         "deliveries). Sent twice, the second finds them pending and replays none again.")
async def retry_deliveries(webhook_id: WebhookId, request: Request, subscriptions: SubscriptionsDep,
                           deliveries: DeliveriesDep, status: Annotated[ReplayableStatus, Query()]) -> dict[str, Any]:
    await _enabled(subscriptions, webhook_id)
    replayed, skipped = [], 0
    for did in reversed(await deliveries.with_status(webhook_id, status)):  # oldest first: the receiver's order
        if await deliveries.replay(webhook_id, did) == "ok":
            replayed.append(did)
        else:
            skipped += 1
    if replayed:
        request.app.state.dispatcher.wake()
    return {"webhook_id": webhook_id, "status": status, "replayed": replayed, "skipped": skipped}


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", status_code=202, response_model=DeliveryView,
             summary="Replay a finished delivery now: a new attempt, the same webhook-id, a fresh schedule",
             description="A delivery that did not arrive (dead_lettered, cancelled, disabled). A delivered one "
                         "answers 409 delivery_not_replayable unless `force=true`, so a replay sent twice (a "
                         "double click, a client's retry) sends once.")
async def retry_delivery(webhook_id: WebhookId, delivery_id: DeliveryId, request: Request, subscriptions: SubscriptionsDep,
                         deliveries: DeliveriesDep,
                         force: Annotated[bool, Query(description="send it again even though the receiver "
                                                      "answered 2xx")] = False) -> dict[str, Any]:
    await _existing(subscriptions, webhook_id)
    if not await deliveries.log(webhook_id, 1, only=delivery_id):
        raise DeliveryNotFound(f"no delivery {delivery_id} for webhook {webhook_id}")
    outcome = await deliveries.replay(webhook_id, delivery_id, force=force)
    if outcome == "missing":
        raise DeliveryNotFound(f"no delivery {delivery_id} for webhook {webhook_id}")
    if outcome == "pending":
        raise DeliveryNotReplayable("the delivery is still pending: its next attempt is scheduled")
    if outcome == "delivered":
        raise DeliveryNotReplayable("the delivery was delivered (the receiver answered 2xx); "
                                    "add ?force=true to send it again")
    if outcome == "disabled":
        raise DeliveryNotReplayable("the webhook is disabled")
    request.app.state.dispatcher.wake()
    return (await deliveries.log(webhook_id, 1, only=delivery_id))[0]


# The body is optional. Declared ``SecretRotation | None``, the schema was anyOf[SecretRotation, null],
# and openapi-python-client's code then sent the unset body as JSON and crashed (an integration audit).
NO_ROTATION_BODY = SecretRotation()


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated, name="rotate_webhook_secret",
             dependencies=[JsonBody],
             summary="A new signing secret, shown once; the old one keeps signing during a grace period")
async def rotate_webhook_secret(webhook_id: str, subscriptions: SubscriptionsDep, settings: SettingsDep,
                                body: SecretRotation = NO_ROTATION_BODY) -> dict[str, Any]:
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
    sub = await _enabled(subscriptions, webhook_id)
    event = new_test_event(sub.id)
    await deliveries.enqueue_direct(event, [sub])
    request.app.state.dispatcher.wake()
    return (await deliveries.log(sub.id, 1, only=delivery_id(sub.id, event["id"])))[0]
