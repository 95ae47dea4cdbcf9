"""The webhooks the service sends, documented in the OpenAPI 3.1 ``webhooks`` section.

These operations are never served: they describe the requests a subscriber receives (``app.webhooks``).
The dispatcher sends the same body (``{"type", "timestamp", "data"}``, built by service/webhooks/events.py)
from the alert the pipeline recorded, so ``data`` is an ``Alert`` as /v1/alerts shows it when it opened.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from service.schemas import WebhookPayload
from service.webhooks import retry
from service.webhooks.events import TEST_EVENT, WebhookTestEvent

router = APIRouter()

SIGNED = ("Signed as Standard Webhooks 1.0 prescribes: verify `webhook-signature` (HMAC-SHA256 of "
          "`{webhook-id}.{webhook-timestamp}.{body}` with the subscription's secret) before trusting the body. "
          "`webhook-id` is the alert's id: the same on every retry, so drop repeats by it. " + retry.ANSWERS)


WebhookId = Annotated[str, Header(alias="webhook-id", description="the alert's id (data.id)")]
WebhookTimestamp = Annotated[str, Header(alias="webhook-timestamp", description="unix seconds of this attempt")]
WebhookSignature = Annotated[str, Header(alias="webhook-signature", description="space-separated `v1,<base64>`")]
RECEIVED: dict[int | str, dict[str, Any]] = {200: {"description": "received; any 2xx acknowledges"}}


@router.post("drift.started", operation_id="driftStarted", summary="A user's emotional pattern started to drift",
             description=SIGNED, responses=RECEIVED)
def drift_started(body: WebhookPayload, webhook_id: WebhookId, webhook_timestamp: WebhookTimestamp,
                  webhook_signature: WebhookSignature) -> None:
    """The alert opened: ``data.before`` and ``data.after`` say from what to what, ``data.evidence`` why."""


@router.post("drift.ended", operation_id="driftEnded", summary="A drifting user's pattern settled again",
             description=SIGNED, responses=RECEIVED)
def drift_ended(body: WebhookPayload, webhook_id: WebhookId, webhook_timestamp: WebhookTimestamp,
                webhook_signature: WebhookSignature) -> None:
    """The episode ended: a new alert (its own id), ``data.after`` the recent emotions now."""


@router.post(TEST_EVENT, operation_id="webhookTest", summary="Sent by POST /v1/webhooks/{id}/test", description=SIGNED,
             responses=RECEIVED)
def webhook_test(body: WebhookTestEvent, webhook_id: WebhookId, webhook_timestamp: WebhookTimestamp,
                 webhook_signature: WebhookSignature) -> None:
    """Only to the subscription it was asked for: if its signature verifies, the receiver is ready."""
