"""The dispatcher: in every replica, one task that turns outbox events into signed webhook POSTs.

Three loops share one Redis and one httpx client:

- **read**: XREADGROUP new outbox entries (one consumer group, a consumer name unique to this
  process) and create a delivery per matching subscription. The entry stays pending in the group
  until every one of its deliveries has a final outcome; then it is XACKed.
- **sweep**: XAUTOCLAIM entries idle longer than ``webhook_claim_idle_ms`` — those of a replica that
  died before creating their deliveries, or between the last outcome and XACK — and take them
  again; taking is idempotent (delivery ids derive from subscription and event). It also refreshes
  the backlog gauges and forgets consumers that left nothing pending.
- **due**: claim deliveries whose next attempt is due (see deliveries.py for the lease), POST them,
  and record the outcome: delivered (2xx), retry (timeout, connection error, 429, 5xx) on the
  schedule with jitter and never before ``Retry-After``, disabled (410), dead letter (other codes, or
  the schedule is spent: that last attempt counts as ``failed``, not ``retry``).

Receiver URLs often carry a token in their path or query, so logs name the receiver's host only
(httpx's own request log included: see urls.HostOnly).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_args

import httpx
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from service import keys, metrics, replies
from service.config import Settings
from service.schemas import DeliveryStatus
from service.errors import InvalidWebhookUrl
from service.webhooks import events
from service.webhooks.deliveries import Claimed, Deliveries, from_outbox
from service.webhooks.retry import RESULTS, classify, next_delay, retry_after_seconds
from service.webhooks.signing import sign
from service.timestamps import iso_time
from service.webhooks.subscriptions import Subscription, Subscriptions
from service.webhooks.urls import HOST_ONLY, check_url, receiver_host

log = logging.getLogger("emodrift.webhooks")
FORGET_CONSUMER_MS = 10 * 60 * 1000
# every attempt's result and delivery's final outcome, exported from 0: a single 410 or dead letter alerts
metrics.from_zero(metrics.WEBHOOK_ATTEMPTS, RESULTS)
metrics.from_zero(metrics.WEBHOOK_DELIVERIES, [status for status in get_args(DeliveryStatus) if status != "pending"])
EXCERPT_BYTES = 256
STOP_TIMEOUT_SECONDS = 5.0  # how long stop() waits for its tasks (they are cancelled first)


@dataclass
class Sent:
    """What one attempt's POST got: the answer (status, Retry-After, the start of the body) or the error."""

    host: str  # the receiver's host, for logs (the URL may carry a secret path)
    status: int | None = None
    retry_after: float | None = None
    excerpt: bytes = b""
    error: str | None = None
    refused: bool = False  # the URL is no longer allowed (check_url)

    @property
    def what(self) -> str | None:
        return f"HTTP {self.status}" if self.status is not None else self.error


class Dispatcher:
    def __init__(self, redis: aioredis.Redis, http: httpx.AsyncClient, settings: Settings,
                 subscriptions: Subscriptions, deliveries: Deliveries) -> None:
        self.redis, self.http, self.settings = redis, http, settings
        self.subscriptions, self.deliveries = subscriptions, deliveries
        self.stream, self.group = settings.outbox_stream, settings.webhook_consumer_group
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        # A blocking read must return before the Redis client's socket timeout fires.
        self.block_ms = max(10, int(settings.redis_timeout_seconds * 500))
        self.lease = settings.webhook_timeout_seconds + settings.webhook_lease_margin_seconds
        self.sweep_every = min(max(settings.webhook_claim_idle_ms / 2000, settings.webhook_poll_interval_seconds), 5.0)
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        logging.getLogger("httpx").addFilter(HOST_ONLY)  # once per logger: the same filter is not added twice

    async def start(self) -> None:
        self._loops = [asyncio.create_task(self._forever(step), name=f"webhooks-{step.__name__}")
                       for step in (self._read, self._sweep, self._due)]

    async def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        # The flag ends a loop even if its cancellation is lost (on Python 3.11 a cancel that lands as
        # wait_for times out can be swallowed, and _forever would loop on): a worker once hung at
        # "Waiting for application shutdown" in the suite. The wait is bounded for the same reason.
        self._stopping = True
        tasks = [*self._loops, *self._inflight]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning("webhooks: %d task(s) still running %.0f s after stop; leaving them", len(pending), timeout)

    def wake(self) -> None:
        """Look for due deliveries now (a replay was just scheduled)."""
        self._wake.set()

    async def _forever(self, step: Callable[[], Awaitable[None]]) -> None:
        """A Redis outage or a flushed database must not end the dispatcher: log, back off, go on."""
        while not self._stopping:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    log.warning("webhooks %s: %s", step.__name__, exc)
                    await asyncio.sleep(1.0)
                await self._ensure_group()
            except Exception as exc:  # noqa: BLE001 - the loop must survive; the cause is logged
                log.warning("webhooks %s: %s: %s", step.__name__, type(exc).__name__, exc)
                await asyncio.sleep(1.0)

    async def _ensure_group(self) -> None:
        try:  # from the stream's start: events written before the first dispatcher ran are not lost
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- outbox -> deliveries -------------------------------------------------------------------
    async def _read(self) -> None:
        reply = replies.streams(await self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"},
                                                            count=64, block=self.block_ms))
        subs = await self.subscriptions.all() if reply else []  # once per batch, not per entry
        for _stream, entries in reply:
            for stream_id, fields in entries:
                await self._take(stream_id.decode(), fields, subs)

    async def _sweep(self) -> None:
        start: Any = "0-0"
        while True:
            reply = await self.redis.xautoclaim(self.stream, self.group, self.consumer,
                                                self.settings.webhook_claim_idle_ms, start_id=start, count=100)
            start, entries = reply[0], reply[1]
            subs = await self.subscriptions.all() if entries else []
            for stream_id, fields in entries:
                if stream_id is not None:
                    await self._take(stream_id.decode(), fields, subs)
            if start in (b"0-0", "0-0"):
                break
        await self._housekeeping()
        await asyncio.sleep(self.sweep_every)

    async def _take(self, stream_id: str, fields: dict[bytes, bytes] | None, subs: list[Subscription]) -> None:
        try:
            event = json.loads((fields or {})[b"event"])
            event_type = event["type"]
            if not isinstance(event["id"], str):
                raise TypeError("event id")
        except (KeyError, TypeError, ValueError):  # a poison entry would block its XACK forever
            log.error("outbox entry %s is not an event; acknowledged without delivery", stream_id)
            await self.redis.xack(self.stream, self.group, stream_id)
            return
        matching = [sub for sub in subs if sub.matches(event_type)]
        if await self.deliveries.enqueue(stream_id, event, events.body(event), matching) == 0:
            await self.redis.xack(self.stream, self.group, stream_id)
        else:
            self._wake.set()

    async def _housekeeping(self) -> None:
        """Backlog gauges: read-but-unacknowledged entries plus, on Redis >= 7, the group's unread lag;
        the age covers both (the oldest pending entry, or the first unread one)."""
        summary = await self.redis.xpending(self.stream, self.group)
        groups = await self.redis.xinfo_groups(self.stream)
        group = next(g for g in groups if _as_bytes(g["name"]) == self.group.encode())
        metrics.OUTBOX_BACKLOG.set(summary["pending"] + int(group.get("lag") or 0))
        unread = await self.redis.xrange(self.stream, b"(" + _as_bytes(group["last-delivered-id"]), "+", count=1)
        oldest = [_as_bytes(i) for i in (summary.get("min"), unread[0][0] if unread else None) if i]
        age = time.time() - min(int(i.split(b"-")[0]) for i in oldest) / 1000 if oldest else 0.0
        metrics.OUTBOX_OLDEST_AGE.set(max(age, 0.0))
        metrics.WEBHOOK_RETRIES_DUE.set(await self.redis.zcard(keys.deliveries_due()))
        for consumer in await self.redis.xinfo_consumers(self.stream, self.group):
            name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
            if consumer["pending"] == 0 and consumer["idle"] > FORGET_CONSUMER_MS and name != self.consumer:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)

    # --- deliveries -> POSTs ----------------------------------------------------------------
    async def _due(self) -> None:
        self._wake.clear()
        free = self.settings.webhook_max_in_flight - len(self._inflight)
        if free > 0:
            now = time.time()
            for delivery_id in await self.deliveries.due(now, free):
                claimed = await self.deliveries.claim(delivery_id, now, now + self.lease)
                if claimed is not None:  # another replica may have won it
                    task = asyncio.create_task(self._attempt(claimed))
                    self._inflight.add(task)
        try:
            await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_interval_seconds)
        except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            pass

    async def _attempt(self, claimed: Claimed) -> None:
        try:
            await self._deliver(claimed)
        except asyncio.CancelledError:
            await self.deliveries.release(claimed)  # shutting down: due again now, for whoever is left
            raise
        except Exception as exc:  # noqa: BLE001 - the lease expires and another attempt follows
            log.warning("webhook delivery %s: %s", claimed.id, type(exc).__name__)  # the text may hold the URL
        finally:
            self._inflight.discard(asyncio.current_task())
            self._wake.set()

    async def _deliver(self, claimed: Claimed) -> None:
        rec = claimed.record
        sub = await self.subscriptions.get(rec["subscription_id"])
        if sub is None or not sub.enabled:
            why = "subscription deleted" if sub is None else "subscription disabled: enable it, then replay this delivery"
            await self._finish(claimed, None, "cancelled", why)
            return
        started, clock = time.time(), time.perf_counter()
        sent = await self._send(sub, rec, started)
        latency = time.perf_counter() - clock
        result, delay = self._outcome(sent, claimed)
        metrics.WEBHOOK_LATENCY.observe(latency)
        metrics.WEBHOOK_ATTEMPTS.labels(result).inc()
        attempt: dict[str, Any] = {
            "attempt": claimed.attempts_so_far + 1, "at": iso_time(started), "status_code": sent.status,
            "error": sent.error, "latency_ms": round(latency * 1000, 2), "result": result,
            "response": sent.excerpt[:EXCERPT_BYTES].decode("utf-8", "replace") or None,
        }
        log.log(logging.DEBUG if result == "delivered" else logging.INFO, "webhook attempt %d of %s to %s: %s (%s)",
                attempt["attempt"], claimed.id, sent.host, result, sent.what)
        await self._settle(claimed, attempt, result, sent, delay)

    async def _send(self, sub: Subscription, rec: dict[str, Any], started: float) -> Sent:
        """One signed POST of the delivery's payload to the subscription's receiver."""
        sent = Sent(host=receiver_host(sub.url))
        try:
            await check_url(sub.url, allow_private=self.settings.webhook_allow_private_urls)
            timestamp, body = int(started), rec["payload"].encode()
            # after a rotation, one signature per secret (space-separated): receivers on either one verify
            signature = " ".join(sign(secret, rec["event_id"], timestamp, body) for secret in sub.signing_secrets(started))
            headers = {"webhook-id": rec["event_id"], "webhook-timestamp": str(timestamp),
                       "webhook-signature": signature,
                       "content-type": "application/json", "user-agent": "emodrift-webhooks/1"}
            # httpx timeouts are per phase; this bounds the whole attempt so it ends inside the lease.
            sent.status, sent.retry_after, sent.excerpt = await asyncio.wait_for(
                self._post(sub.url, body, headers), self.settings.webhook_timeout_seconds)
        except InvalidWebhookUrl as exc:  # resolves elsewhere now than when subscribed
            sent.error, sent.refused = exc.message, True
        except (asyncio.TimeoutError, httpx.TimeoutException):
            sent.error = "timeout"
        except httpx.HTTPError as exc:
            sent.error = f"{type(exc).__name__}: {str(exc).replace(sub.url, sent.host)}"[:200]
        return sent

    def _outcome(self, sent: Sent, claimed: Claimed) -> tuple[str, float | None]:
        """The attempt's result and, for one to retry, the delay before the next attempt."""
        result = "failed" if sent.refused else classify(sent.status)
        if result != "retry":
            return result, None
        delay = next_delay(self.settings.webhook_retry_schedule, self.settings.webhook_retry_jitter,
                           claimed.round_attempt, sent.retry_after)
        if delay is None:  # the schedule is spent: this attempt was the last, and it failed
            return "failed", None
        return result, delay

    async def _settle(self, claimed: Claimed, attempt: dict[str, Any], result: str, sent: Sent,
                      delay: float | None) -> None:
        """Records the attempt: the delivery finished one way or another, or pending until ``delay``."""
        if result == "delivered":
            await self._finish(claimed, attempt, "delivered", "")
        elif result == "gone":
            await self._finish(claimed, attempt, "disabled", "receiver answered 410 Gone")
        elif result == "failed":
            exhausted = classify(sent.status) == "retry" and not sent.refused
            await self._finish(claimed, attempt, "dead_lettered",
                               f"{'retries exhausted' if exhausted else 'not retryable'}: {sent.what}")
        else:
            assert delay is not None
            attempt["retry_after_s"], attempt["next_attempt_at"] = sent.retry_after, iso_time(time.time() + delay)
            outcome, _ = await self.deliveries.record(claimed, attempt, "pending", next_at=time.time() + delay)
            if outcome == "stale":  # another replica claimed it after our lease ran out: theirs counts
                log.warning("webhook delivery %s: lease lost, result discarded", claimed.id)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, float | None, bytes]:
        """Status, Retry-After, and the start of the answer (for the log; a huge body is not read)."""
        excerpt = b""
        async with self.http.stream("POST", url, content=body, headers=headers) as response:
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
            return response.status_code, retry_after_seconds(response.headers.get("retry-after")), excerpt

    async def _finish(self, claimed: Claimed, attempt: dict[str, Any] | None, status: str, reason: str) -> None:
        outcome, left = await self.deliveries.record(claimed, attempt, status, reason=reason)
        if outcome != "ok":  # 'stale': the lease was lost; 'erased': the user was erased meanwhile
            log.warning("webhook delivery %s: %s, result discarded", claimed.id,
                        "lease lost" if outcome == "stale" else "user erased")
            return
        metrics.WEBHOOK_DELIVERIES.labels(status).inc()
        if status == "dead_lettered":
            metrics.WEBHOOK_DEAD_LETTERS.inc()
        if left == 0 and from_outbox(claimed.record["stream_id"]):
            await self.redis.xack(self.stream, self.group, claimed.record["stream_id"])


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
