"""What a delivery's body is, and the `webhook.test` event.

Every delivery POSTs ``{"type", "timestamp", "data"}`` where ``data`` is the event (a drift alert, or
the test event below). The test event goes only to the subscription it was asked for, through the
same delivery machinery as alerts (signing, retries, the delivery log), but not through the outbox.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.timestamps import iso_time
from service.schemas import DateTime

TEST_EVENT = "webhook.test"


def body(event: dict[str, Any]) -> str:
    """The delivery body of an event, compact JSON (signed byte for byte)."""
    envelope = {"type": event["type"], "timestamp": event.get("emitted_at") or event.get("at"), "data": event}
    return json.dumps(envelope, separators=(",", ":"))


def new_test_event(subscription_id: str) -> dict[str, Any]:
    now = iso_time(time.time())
    return {"id": f"evt_test_{secrets.token_hex(12)}", "type": TEST_EVENT, "subscription_id": subscription_id,
            "at": now, "emitted_at": now,
            "message": "a test event from emodrift: if its signature verifies, your receiver is ready"}


class WebhookTestData(BaseModel):
    id: str = Field(description="the event id, also sent as the webhook-id header")
    type: Literal["webhook.test"]
    subscription_id: str = Field(description="the subscription it was sent to")
    at: DateTime
    emitted_at: DateTime
    message: str


class WebhookTestEvent(BaseModel):
    type: Literal["webhook.test"]
    timestamp: DateTime = Field(description="RFC 3339, when it was sent")
    data: WebhookTestData
