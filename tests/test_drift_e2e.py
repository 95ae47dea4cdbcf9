"""The issue's acceptance path: a user's happy face photos, then sad/angry ones, through the HTTP
API against a real redis-server → `drifting` and a `drift.started` event in the outbox."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import redis

from tests import image_fixtures as img

START = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


def _post(client: httpx.Client, user: str, i: int, data: bytes) -> dict:
    created = (START + timedelta(hours=5 * i)).isoformat()
    response = client.post(f"/v1/users/{user}/posts", files={"image": (f"{i}.jpg", data, "image/jpeg")},
                           data={"post_id": f"post-{i}", "created_at": created})
    assert response.status_code == 200, response.text
    return response.json()


def test_happy_then_negative_photos_drive_a_user_into_drift(client: httpx.Client, redis_client: redis.Redis) -> None:
    happy, negative = img.happy_faces(), img.negative_faces()
    n_happy = 30
    results = [_post(client, "zoe", i, happy[i % len(happy)]) for i in range(n_happy)]
    assert all(r["emotion"]["label"] == "happy" and r["emotion"]["face_detected"] for r in results)
    assert all(r["alert"] is None for r in results), "alarm on a steady happy user"
    assert results[-1]["drift"]["status"] == "stable"
    assert redis_client.xlen("ed:outbox") == 0

    alert_at = None
    for i in range(n_happy, n_happy + 30):
        result = _post(client, "zoe", i, negative[i % len(negative)])
        assert result["emotion"]["label"] in {"angry", "fear", "sad", "disgust"}
        if result["alert"]:
            alert_at, alert = i, result["alert"]
            break
    assert alert_at is not None, "no alarm after 30 negative posts"
    delay = alert_at - n_happy + 1
    assert delay <= 12, f"alarm only after {delay} negative posts"

    assert alert["type"] == "drift.started" and alert["user_id"] == "zoe"
    assert alert["before"]["dominant"] == "happy"
    assert alert["after"]["dominant"] in {"angry", "fear", "sad", "disgust"}
    assert alert["valence_change"] < -0.5
    assert f"post-{alert_at}" in alert["evidence_post_ids"]
    # image posts: the face detector's findings are the evidence's (observations claim none)
    assert result["emotion"]["source"] == "image"
    assert alert["evidence"]["posts_with_face"] == len(alert["evidence_post_ids"])
    assert all(p["face"] is True and p["source"] == "image" for p in alert["evidence"]["top_posts"])
    (_, fields), = redis_client.xrange("ed:outbox")
    assert json.loads(fields[b"event"]) == alert

    user = client.get("/v1/users/zoe").json()
    assert user["drift"]["status"] == "drifting"
    assert user["drift"]["posts_seen"] == alert_at + 1
    assert user["last_alert"]["id"] == alert["id"]
    assert max(user["recent"], key=user["recent"].get) in {"angry", "fear", "sad", "disgust"}
