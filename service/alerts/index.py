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

from service import keys
from service.alerts.lifecycle import STATUSES

# KEYS: by time, owners, by status (one per status); ARGV: cutoff (unix seconds), at most this many.
# Alerts recorded before the cutoff have expired with their users' retention: forget them here too.
EXPIRE_OLD = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids == 0 then return 0 end
redis.call('HDEL', KEYS[2], unpack(ids))
for i = 1, #KEYS do
  if i ~= 2 then redis.call('ZREM', KEYS[i], unpack(ids)) end
end
return #ids
"""
EXPIRE_BATCH = 500
# KEYS: the status sets, the one to list the alert in last; ARGV: alert id, score. Scripts, not
# MULTI: a Redis Cluster client runs a script on the slot's node, all or nothing.
MOVE = """
for i = 1, #KEYS - 1 do redis.call('ZREM', KEYS[i], ARGV[1]) end
return redis.call('ZADD', KEYS[#KEYS], ARGV[2], ARGV[1])
"""
# KEYS: by time, owners, the status sets; ARGV: alert ids
REMOVE = """
redis.call('HDEL', KEYS[2], unpack(ARGV))
for i = 1, #KEYS do
  if i ~= 2 then redis.call('ZREM', KEYS[i], unpack(ARGV)) end
end
return 0
"""


def created_seconds(alert: dict[str, Any]) -> float:
    """When the alert was recorded, as unix seconds (its score in every set)."""
    return datetime.fromisoformat(alert["created_at"].replace("Z", "+00:00")).timestamp()


def status_keys() -> list[str]:
    return [keys.alerts_by_status(status) for status in STATUSES]


class AlertIndex:
    def __init__(self, redis: aioredis.Redis, *, retention_seconds: int) -> None:
        self.redis = redis
        self.retention = retention_seconds
        self._expire_old = redis.register_script(EXPIRE_OLD)
        self._move = redis.register_script(MOVE)
        self._remove = redis.register_script(REMOVE)

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
        return int(await self._expire_old(keys=[keys.alerts_by_time(), keys.alert_owners(), *status_keys()],
                                          args=[now - self.retention, EXPIRE_BATCH]))

    async def move(self, alert_id: str, score: float, status: str) -> None:
        """The alert's status is now ``status``: only that status set lists it."""
        others = [keys.alerts_by_status(other) for other in STATUSES if other != status]
        await self._move(keys=[*others, keys.alerts_by_status(status)], args=[alert_id, score])

    async def remove(self, alert_ids: list[str]) -> None:
        """Unlist these alerts (their records are gone: erased or expired)."""
        if alert_ids:
            await self._remove(keys=[keys.alerts_by_time(), keys.alert_owners(), *status_keys()], args=alert_ids)
