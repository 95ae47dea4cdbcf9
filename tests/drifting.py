"""A user whose mood changes, posted through the real API until the detector says so."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

START = datetime(2026, 10, 1, 8, 0, tzinfo=timezone.utc)


def drift(client: httpx.Client, user: str, before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Observations of ``before``, a post every 6 hours, then of ``after``, until drift.started; its alert."""
    for i in range(90):
        body = client.post(f"/v1/users/{user}/observations", json={
            "post_id": f"{user[:40]}-{i}", "probabilities": before if i < 40 else after,
            "created_at": (START + timedelta(hours=6 * i)).isoformat()})
        assert body.status_code == 200, body.text
        if body.json()["alert"]:
            assert i >= 40, "alarm before the change"
            alert: dict[str, Any] = body.json()["alert"]
            return alert
    raise AssertionError(f"no alert for {user} after 50 posts of the change")
