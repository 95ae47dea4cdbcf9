"""The listing of every user's alerts: sorted sets by time and by status, and who owns each alert.

A user's alerts live in the user's Redis Cluster slot, written by the advance script with the step
that raised them; these sets live in a slot of their own (``{alerts}``), so no script can write both.
The outbox relay (service/outbox.py) adds each alert here as it relays the user's pending events, in
the same round trip; a writer that dies in between leaves the event pending and the sweeper indexes
it later. The user's record stays the truth: readers drop index entries whose record is gone
(erased, expired) and move those whose status moved on (see store.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from service import keys, lua
from service.alerts.lifecycle import STATUSES

# Its scripts: service/lua/alerts_*.lua (scripts, not MULTI: a Redis Cluster client runs a script on the
# slot's node, all or nothing).
EXPIRE_BATCH = 500


def created_seconds(alert: dict[str, Any]) -> float:
    """When the alert was recorded, as unix seconds (its score in every set)."""
    return datetime.fromisoformat(alert["created_at"].replace("Z", "+00:00")).timestamp()


def status_keys() -> list[str]:
    return [keys.alerts_by_status(status) for status in STATUSES]


class AlertIndex:
    def __init__(self, redis: aioredis.Redis, *, retention_seconds: int) -> None:
        self.redis = redis
        self.retention = retention_seconds
        self._expire_old = lua.ALERTS_EXPIRE_OLD.bind(redis)
        self._move = lua.ALERTS_MOVE.bind(redis)
        self._remove = lua.ALERTS_REMOVE.bind(redis)

    @staticmethod
    def add(pipe: Any, user_id: str, alert: dict[str, Any]) -> None:
        """Queue on ``pipe`` (a pipeline) the commands that list ``alert`` of ``user_id``. An event
        without a lifecycle (pending since a release before alerts) has no record to list."""
        if "created_at" not in alert:
            return
        score = {alert["id"]: created_seconds(alert)}
        pipe.zadd(keys.alerts_by_time(), score)
        pipe.zadd(keys.alerts_by_status(alert.get("status", "open")), score)
        pipe.hset(keys.alert_owners(), alert["id"], user_id)

    async def expire_old(self, now: float) -> int:
        """Forget up to a batch of alerts older than the retention; returns how many."""
        reply = await self._expire_old(keys={"by_time": keys.alerts_by_time(), "owners": keys.alert_owners()},
                                       key_tail=status_keys(), args={"cutoff": now - self.retention, "batch": EXPIRE_BATCH})
        return int(reply.values[0])

    async def move(self, alert_id: str, score: float, status: str) -> None:
        """The alert's status is now ``status``: only that status set lists it. Unlisted meanwhile (its
        user erased between a verdict's write and this move): the script answers 'missing', and it stays so."""
        others = [keys.alerts_by_status(other) for other in STATUSES if other != status]
        await self._move(keys={"target": keys.alerts_by_status(status), "owners": keys.alert_owners()}, key_tail=others,
                         args={"alert_id": alert_id, "score": score})

    async def remove(self, alert_ids: list[str]) -> None:
        """Unlist these alerts (their records are gone: erased or expired)."""
        if alert_ids:
            await self._remove(keys={"by_time": keys.alerts_by_time(), "owners": keys.alert_owners()},
                               key_tail=status_keys(), arg_tail=alert_ids)
