"""The alert store: list, read and judge alerts (Redis; keys in service/keys.py).

Each alert lives in its user's hash (``keys.alerts``), written by the advance script with the step
that raised it, so erasure and retention treat it as one of the user's keys. The listing across users
(index.py) is filled by the outbox relay. A transition (acknowledge, resolve) is a compare-and-set of
the record in the user's slot, then a move between the status sets; a crash between the two leaves a
stale hint that the next listing repairs, never a wrong answer: every alert listed is read from its
record.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import builtins
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from service import json_codec, keys, lua, metrics, replies
from service.schemas import ID_PATTERN
from service.alerts import lifecycle
from service.alerts.index import AlertIndex, created_seconds
from service.drift import RAISERS
from service.errors import AlertNotFound, BadRequest, StateConflict
from service.state_store import guarded

log = logging.getLogger("emodrift.alerts")

SWAP_ATTEMPTS = 8
MAX_LIMIT = 200
SCAN_LIMIT = 1000  # alerts one listing request examines at most (filters can skip many): bounded work
CHUNK = 100

Position = tuple[float, str]  # (created unix seconds, alert id): the listing's order, newest first


def encode_cursor(position: Position) -> str:
    return base64.urlsafe_b64encode(f"{position[0]!r} {position[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a ``next_cursor`` holds; 400 for anything else (a NaN or infinite time reached Redis
    as a range bound it refused: a 500).

    >>> decode_cursor(encode_cursor((1.5, "evt_1")))
    (1.5, 'evt_1')
    >>> decode_cursor(base64.urlsafe_b64encode(b"nan x").decode())
    Traceback (most recent call last):
    service.errors.BadRequest: cursor: not a next_cursor this API returned
    """
    try:
        score, alert_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(" ", 1)
        if not math.isfinite(float(score)) or not ID_PATTERN.fullmatch(alert_id):
            raise ValueError("not a position")
        return float(score), alert_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("cursor: not a next_cursor this API returned") from exc


def user_index(raw: bytes | str | None) -> list[Position]:
    """The positions in a user's ``index`` field, newest first."""
    entries = [entry.split(":", 1) for entry in replies.text(raw or b"").split()]
    return sorted(((float(ts), alert_id) for ts, alert_id in entries), reverse=True)


def after(position: Position, cursor: Position | None) -> bool:
    """Does ``position`` come after ``cursor`` in the listing (newest first, then id descending, as
    Redis orders equal scores in reverse)?"""
    return cursor is None or position < cursor


class _Source:
    """Positions newest first, after a cursor: from a sorted set, fetched a chunk at a time.

    Each fetch starts from the last position fetched, not from an offset: a listing unlists entries as
    it reads them (records gone, stale status hints), and an offset counted before that would step over
    as many entries as were unlisted behind it.
    """

    def __init__(self, redis: aioredis.Redis, key: str, cursor: Position | None) -> None:
        self.redis, self.key = redis, key
        self.frontier = cursor  # the last position fetched from Redis
        self.buffer: list[Position] = []  # fetched, not yet handed out

    async def take(self, n: int) -> list[Position]:
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        if len(out) < n:
            out += await self._fetch(n - len(out))
        return out

    async def _fetch(self, n: int) -> list[Position]:
        """Up to ``n`` positions after the frontier. The fetch is inclusive of the frontier's score,
        whose ties (not after it) it reads again and drops: it asks for more while ties fill a reply."""
        top = "+inf" if self.frontier is None else repr(self.frontier[0])
        ask = n
        while True:
            raw = replies.scored(await guarded(self.redis.zrevrangebyscore(
                self.key, top, "-inf", start=0, num=ask, withscores=True)))
            fresh = [p for p in ((score, member.decode()) for member, score in raw) if after(p, self.frontier)]
            if len(fresh) >= n or len(raw) < ask:
                break
            ask *= 2
        fresh = fresh[:n]
        if fresh:
            self.frontier = fresh[-1]
        return fresh

    def put_back(self, positions: list[Position]) -> None:
        self.buffer = positions + self.buffer

    async def exhausted(self) -> bool:
        more = await self.take(1)
        self.put_back(more)
        return not more


class _UserSource(_Source):
    """One user's positions, from the index in their hash (bounded by ``alerts_per_user``)."""

    def __init__(self, positions: list[Position], cursor: Position | None) -> None:
        self.buffer = [p for p in positions if after(p, cursor)]

    async def take(self, n: int) -> list[Position]:
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


# Every verdict's series exists from the start, at 0: increase() over a series that first appears at 1
# misses that 1, and the dashboard's false-alarm share read 0.665 for 0.4 (a re-audit). Every raiser: a
# promotion raises drift.started too (transition.py)
metrics.from_zero(metrics.ALERT_VERDICTS, lifecycle.VERDICTS)
metrics.from_zero(metrics.ALERT_VERDICTS_BY_RULE, RAISERS, lifecycle.VERDICTS)
for _verdict in lifecycle.VERDICTS:
    for _to in lifecycle.VERDICTS:
        if _to != _verdict:
            metrics.ALERT_VERDICT_AMENDMENTS.labels(_verdict, _to)
            for _rule in RAISERS:
                metrics.ALERT_VERDICT_AMENDMENTS_BY_RULE.labels(_rule, _verdict, _to)


def _count_judgment(before: dict[str, Any], after: dict[str, Any]) -> None:
    """A verdict counts once, when first given; an amendment counts as one from the old verdict to the new
    (the dashboard's false-alarm share nets them out: a mended misclick is not counted twice)."""
    if after["status"] != "resolved":
        return
    rules = after.get("raised_by") or []
    if before["status"] != "resolved":
        metrics.ALERT_VERDICTS.labels(after["verdict"]).inc()
        for rule in rules:
            metrics.ALERT_VERDICTS_BY_RULE.labels(rule, after["verdict"]).inc()
    elif before["verdict"] != after["verdict"]:
        metrics.ALERT_VERDICT_AMENDMENTS.labels(before["verdict"], after["verdict"]).inc()
        for rule in rules:
            metrics.ALERT_VERDICT_AMENDMENTS_BY_RULE.labels(rule, before["verdict"], after["verdict"]).inc()


def _ends(started: dict[str, Any], ended: dict[str, Any]) -> bool:
    """Is ``ended`` the drift.ended of the episode ``started`` opened (its neighbour in the listing)?"""
    return (started["type"], ended["type"]) == ("drift.started", "drift.ended") and \
        ended["posts_seen"] > started["posts_seen"]


def _neighbour_id(ids: list[str], alert: dict[str, Any]) -> str | None:
    """The alert next to ``alert`` in its user's index (``ids``, newest first), where its episode's other end
    would be: just newer for a start, just older for an end (None: not kept, or none there)."""
    if alert["id"] not in ids:
        return None
    at = ids.index(alert["id"]) + (-1 if alert["type"] == "drift.started" else 1)
    return ids[at] if 0 <= at < len(ids) else None


def _paired(alert: dict[str, Any], neighbour: dict[str, Any] | None) -> dict[str, Any] | None:
    """``neighbour`` when it is the other end of ``alert``'s episode, else None."""
    if neighbour is None:
        return None
    started, ended = (alert, neighbour) if alert["type"] == "drift.started" else (neighbour, alert)
    return neighbour if _ends(started, ended) else None


class Verdicts(Protocol):
    """What live calibration (service/calibration.py) takes from the alerts: verdicts, and erasures."""

    def judge(self, alarm_id: str, real: bool, judgment: int) -> Awaitable[str]: ...

    def forget(self, alarm_ids: builtins.list[str]) -> Awaitable[None]: ...


class AlertStore:
    def __init__(self, redis: aioredis.Redis, index: AlertIndex, *, clock: Callable[[], float] = time.time,
                 calibration: Verdicts | None = None) -> None:
        self.redis = redis
        self.index = index
        self.clock = clock
        # live calibration: a drift.started judged a real change leaves its counts, and back
        self.calibration = calibration
        self._swap = lua.ALERT_SWAP.bind(redis)  # a compare-and-set of the record

    # --- reading ------------------------------------------------------------------------------
    async def list(self, *, status: str | tuple[str, ...] | None = None, user_id: str | None = None,
                   type: str | None = None, backfill: bool | None = None, direction: lifecycle.Direction | None = None,
                   limit: int = 50, cursor: str | None = None) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Alerts newest first (by ``created_at``), filtered; and the cursor of the next page (None: no more).
        ``status``: one, or several (the /ui's "unresolved": open or acknowledged); ``backfill``: only
        alerts a backfill recorded (True) or only live ones (False); ``direction``: only changes for the worse
        or the better (by valence).

        A page examines at most ``SCAN_LIMIT`` alerts, so one with rare matches may hold fewer than
        ``limit``: follow ``next_cursor`` until it is None.
        """
        limit = max(1, min(limit, MAX_LIMIT))
        position = decode_cursor(cursor) if cursor else None
        wanted = (status,) if isinstance(status, str) else status
        status = wanted[0] if wanted is not None and len(wanted) == 1 else None  # one status: its own index
        if user_id is not None:
            source: _Source = _UserSource(user_index(await guarded(self.redis.hget(keys.alerts(user_id), "index"))),
                                          position)
        else:
            key = keys.alerts_by_status(status) if status else keys.alerts_by_time()
            source = _Source(self.redis, key, position)
        found: builtins.list[dict[str, Any]] = []
        last: Position | None = None
        scanned = 0
        gone: builtins.list[str] = []
        while len(found) < limit and scanned < SCAN_LIMIT:
            chunk = await source.take(min(CHUNK, SCAN_LIMIT - scanned))
            if not chunk:
                break
            records = await self._records([alert_id for _, alert_id in chunk], user_id)
            for i, (pos, record) in enumerate(zip(chunk, records)):
                scanned, last = scanned + 1, pos
                if record is None:
                    gone.append(pos[1])
                    continue
                if status and record["status"] != status and user_id is None:
                    await guarded(self.index.move(record["id"], pos[0], record["status"]))  # a stale hint
                if ((wanted and record["status"] not in wanted) or (type and record["type"] != type)
                        or (backfill is not None and bool(record.get("backfill")) != backfill)
                        or (direction is not None and not lifecycle.heads(record, direction))):
                    continue
                found.append(record)
                if len(found) == limit:
                    source.put_back(chunk[i + 1:])
                    break
        if gone and user_id is None:  # erased or expired: their records are the truth
            await guarded(self.index.remove(gone))
        more = last is not None and not await source.exhausted()
        return found, encode_cursor(last) if more and last is not None else None

    async def other_end(self, alert: dict[str, Any]) -> dict[str, Any] | None:
        """The other end of the alert's episode among its user's kept alerts: a drift.started's drift.ended,
        a drift.ended's drift.started (None: still open, or no longer kept). A user's alerts are recorded in
        the order of their posts and episodes do not overlap, so it is the alert next to this one in the
        user's index: just newer for a start, just older for an end (the nearest among the newest 200 was
        another episode's with more alerts kept: a re-audit). One record read, however many are kept."""
        neighbour_id = _neighbour_id(await self.ids_of(alert["user_id"]), alert)
        if neighbour_id is None:
            return None
        (neighbour,) = await self._records([neighbour_id], alert["user_id"])
        return _paired(alert, neighbour)

    async def episode(self, alert: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The alert page's: the other end of the alert's episode (``other_end``), and the user's newest kept
        alert when it came after both (None otherwise: a reviewer confirming "the user is back" was not told
        she had drifted again since). One read of the user's index, one of the two records."""
        ids = await self.ids_of(alert["user_id"])
        neighbour_id, newest_id = _neighbour_id(ids, alert), ids[0] if ids else None
        wanted = [alert_id for alert_id in (neighbour_id, newest_id) if alert_id]
        records = dict(zip(wanted, await self._records(wanted, alert["user_id"]))) if wanted else {}
        other_end = _paired(alert, records.get(neighbour_id or ""))
        latest = records.get(newest_id or "")
        after = max(alert["posts_seen"], (other_end or alert)["posts_seen"])
        return other_end, latest if latest and latest["posts_seen"] > after else None

    async def ends_of(self, alerts: builtins.list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The drift.ended of each drift.started among ``alerts`` whose episode has ended, by the started
        alert's id: what ``other_end`` finds for one, for a page of the queue in two round trips (each
        user's index, then the records, from each user's own). The queue showed an ended episode's start as open, like a
        live one (a reviewer's audit)."""
        started = [alert for alert in alerts if alert["type"] == "drift.started"]
        users = sorted({alert["user_id"] for alert in started})
        if not users:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip, every user's slot
            for user_id in users:
                pipe.hget(keys.alerts(user_id), "index")
            indexes = dict(zip(users, await guarded(pipe.execute())))
        newer: dict[str, str] = {}
        for alert in started:
            ids = [alert_id for _, alert_id in user_index(indexes[alert["user_id"]])]  # newest first
            if (neighbour_id := _neighbour_id(ids, alert)) is not None:
                newer[alert["id"]] = neighbour_id
        if not newer:
            return {}
        owner = {alert["id"]: alert["user_id"] for alert in started}
        async with self.redis.pipeline(transaction=False) as pipe:  # each user's own record: the cross-user owners
            for started_id, ended_id in newer.items():  # drop alerts past retention the user still keeps (a re-audit)
                pipe.hget(keys.alerts(owner[started_id]), ended_id)
            raw = await guarded(pipe.execute())
        neighbours = {ended_id: json_codec.loads(item) for ended_id, item in zip(newer.values(), raw) if item}
        return {alert["id"]: ended for alert in started
                if (ended := _paired(alert, neighbours.get(newer.get(alert["id"], "")))) is not None}

    async def _records(self, alert_ids: builtins.list[str],
                       user_id: str | None) -> builtins.list[dict[str, Any] | None]:
        """The records of these alerts, in order (None: gone), in one or two round trips."""
        if user_id is not None:
            raw = await guarded(self.redis.hmget(keys.alerts(user_id), alert_ids))
            return [json_codec.loads(item) if item else None for item in raw]
        owners = replies.values(await guarded(self.redis.hmget(keys.alert_owners(), alert_ids)))
        owned = [(alert_id, owner.decode()) for alert_id, owner in zip(alert_ids, owners) if owner]
        records: dict[str, Any] = {}
        if owned:
            async with self.redis.pipeline(transaction=False) as pipe:  # one round trip, every user's slot
                for alert_id, owner in owned:
                    pipe.hget(keys.alerts(owner), alert_id)
                raw = await guarded(pipe.execute())
            records = {alert_id: json_codec.loads(item) for (alert_id, _), item in zip(owned, raw) if item}
        return [records.get(alert_id) for alert_id in alert_ids]

    async def _locate(self, alert_id: str) -> tuple[str, bytes]:
        """(user id, the stored record) of the alert, or AlertNotFound."""
        owner = await guarded(self.redis.hget(keys.alert_owners(), alert_id))
        user_id = replies.text(owner) if owner else None
        raw = await guarded(self.redis.hget(keys.alerts(user_id), alert_id)) if user_id else None
        if raw is None or user_id is None:
            raise AlertNotFound(f"no alert {alert_id}")
        return user_id, replies.as_bytes(raw)

    async def exists(self, alert_id: str) -> bool:
        try:
            await self._locate(alert_id)
        except AlertNotFound:
            return False
        return True

    async def get(self, alert_id: str) -> dict[str, Any]:
        alert: dict[str, Any] = json_codec.loads((await self._locate(alert_id))[1])  # orjson parses to Any
        return alert

    # --- judging ------------------------------------------------------------------------------
    async def acknowledge(self, alert_id: str, by: str | None = None) -> dict[str, Any]:
        """open -> acknowledged; again on an acknowledged alert: unchanged; a resolved one: AlertResolved.
        ``by``: the label of the key that acted (recorded as ``acknowledged_by``)."""
        return await self._transition(alert_id, lambda alert: lifecycle.acknowledged(alert, now=self.clock(), by=by))

    async def resolve(self, alert_id: str, verdict: str, note: str | None, by: str | None = None,
                      replaces: str | None = None) -> dict[str, Any]:
        """open|acknowledged -> resolved with ``verdict``; the same verdict and note again: unchanged;
        ``replaces``: the resolved_at of the judgment it replaces (lifecycle.resolved)."""
        return await self._transition(
            alert_id, lambda alert: lifecycle.resolved(alert, verdict, note, now=self.clock(), by=by, replaces=replaces))

    async def _transition(self, alert_id: str, step: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        for _ in range(SWAP_ATTEMPTS):
            user_id, raw = await self._locate(alert_id)
            current = json_codec.loads(raw)
            updated = step(current)
            if updated is current:  # nothing to change: a repeated request
                return current
            reply = await guarded(self._swap(keys={"alerts": keys.alerts(user_id)},
                                             args={"alert_id": alert_id, "expected": raw,
                                                   "replacement": json_codec.dumps(updated)}))
            if reply.status == "missing":
                raise AlertNotFound(f"no alert {alert_id}")
            if reply.status == "ok":  # else 'conflict': changed since read, try again
                await guarded(self.index.move(alert_id, created_seconds(updated), updated["status"]))
                _count_judgment(current, updated)
                await self._calibrate(updated)
                return updated
        raise StateConflict(f"alert {alert_id} is being changed concurrently; retry")

    async def _calibrate(self, after: dict[str, Any]) -> None:
        """Tells live calibration whether a judged drift.started was a real change (``judge`` changes the
        counts only when that changes, and only for a later judgment than the one it last took: two
        reviewers' changes written in one order may reach it in the other). The verdict is written first
        and stands: a Redis error here loses the calibration's correction until the alert is judged again,
        never the verdict."""
        if self.calibration is None or after["type"] != "drift.started" or after["verdict"] is None:
            return
        try:
            await self.calibration.judge(after["id"], lifecycle.judged_real(after), lifecycle.judgment_number(after))
        except Exception:  # noqa: BLE001 - see above
            log.warning("live calibration did not take the verdict on %s", after["id"], exc_info=True)

    # --- erasure ------------------------------------------------------------------------------
    async def ids_of(self, user_id: str) -> builtins.list[str]:
        """The ids of the alerts kept for ``user_id``."""
        return [alert_id for _, alert_id in user_index(await guarded(self.redis.hget(keys.alerts(user_id), "index")))]

    async def unlist(self, alert_ids: builtins.list[str]) -> None:
        """Erasure: the listing forgets these alerts (their records go with the user's keys), and live
        calibration the alarms it recorded by their ids (its counts stay: aggregates of no one)."""
        await guarded(self.index.remove(alert_ids))
        if self.calibration is not None:
            await guarded(self.calibration.forget(alert_ids))
