"""Seed a population of users into the real service through its HTTP API (observations in backfill
batches, as a platform replays its history): what `emodrift timelines export` then reads from Redis."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np

from service.emotions import LABELS
from service.timestamps import iso_time

# every user's first post: far enough back that the longest history ends before today (a created_at more
# than a day ahead of the clock is refused; the stand-in families' users span up to 4.4 years: from
# 2026-01-01 they ran past December 2026)
START = 1_420_070_400.0  # 2015-01-01T00:00:00Z


def seed(client: httpx.Client, users: Sequence[Any], prefix: str = "user", batch: int = 256, together: int = 16) -> list[str]:
    """Post every user's posts (``probs`` (T, 7), ``gaps`` (T,), ``face`` (T,)); returns the user ids.
    ``together`` users at a time, their posts interleaved (each user's in order) so a batch advances
    several users, not hundreds at once (each in flight holds one of the service's Redis connections,
    EMODRIFT_REDIS_MAX_CONNECTIONS; past them items wait, and on a loaded test machine time out)."""
    ids = [f"{prefix}-{i}" for i in range(len(users))]
    items: list[dict[str, Any]] = []
    for first in range(0, len(users), together):
        group = list(zip(ids, users))[first:first + together]
        times = [START + np.cumsum(u.gaps) for _, u in group]
        for t in range(max(len(u.probs) for _, u in group)):
            for (uid, u), ts in zip(group, times):
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
