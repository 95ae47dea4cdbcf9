"""Seed a population of users into the real service through its HTTP API (observations in backfill
batches, as a platform replays its history): what `emodrift timelines export` then reads from Redis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from service.temporal import LABELS
from service.timestamps import iso_time

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: every user's first post


def seed(client: httpx.Client, users: Sequence[Any], prefix: str = "user", batch: int = 256) -> list[str]:
    """Post every user's posts (``probs`` (T, 7), ``gaps`` (T,), ``face`` (T,)); returns the user ids.
    Items interleave users so each batch advances many of them, each user's posts in order."""
    ids = [f"{prefix}-{i}" for i in range(len(users))]
    items: list[dict[str, Any]] = []
    longest = max(len(u.probs) for u in users)
    times = [START + np.cumsum(u.gaps) for u in users]
    for t in range(longest):
        for uid, u, ts in zip(ids, users, times):
            if t < len(u.probs):
                p = np.asarray(u.probs[t], dtype=np.float64)
                p = p / p.sum()
                items.append({"user_id": uid, "post_id": f"{uid}-p{t}", "created_at": iso_time(float(ts[t])),
                              "probabilities": dict(zip(LABELS, p.tolist())), "face_detected": bool(u.face[t])})
    for i in range(0, len(items), batch):
        response = client.post("/v1/posts/batch", json={"items": items[i:i + batch], "backfill": True})
        assert response.status_code == 200, response.text
        errors = [r for r in response.json()["results"] if "error" in r]
        assert not errors, errors[:3]
    return ids
