"""A form the page did not take, kept for one showing of its alert's page: what the analyst chose and
typed, and why it was not recorded.

A refused action answers with a redirect to the alert's page (reloading it posts nothing again, and
its address is the alert's), so what the form held must outlive the request: it is kept in Redis
under the alert's id and the session's nonce, never in a URL (which lands in logs and history), for
``SECONDS``, and the next showing of that page takes it. Only the session that kept a draft can
read it; erasing the alert's user deletes it (``forget``: a note is about that user). Who may keep one (the session's own forms; a form of an ended session only when its seal
proves it was rendered for the key that signs in again) is decided in routes.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from service import keys
from service.alerts.lifecycle import NOTE_MAX_CHARS, plain_breaks
from service.state_store import guarded

SECONDS = 300  # from the refusal to the page it redirects to: one redirect, or a sign-in and one
ACTIONS = ("acknowledge", "resolve")
# Bounds on what a signed-in person can make Redis hold (an outside review: 500 sign-ins, each refused a
# 60,000-character note, grew one alert's drafts to 30 MB, each write renewing the TTL): sessions with a
# draft per alert, and the characters of a note kept (a refused note is over the limit; it is kept to be
# cut down, and twice the limit shows what was typed)
MAX_SESSIONS = 16
MAX_NOTE_CHARS = 2 * NOTE_MAX_CHARS
# drafts the sessions of one key may keep within SECONDS, over all alerts (an audit's rate-limited reviewer
# kept 3467 in 20 s, 170 MB; counted per session, signing in again started a new count): people have a few
# tabs open, not hundreds
MAX_PER_KEY = 32


@dataclass(frozen=True)
class Unsent:
    """A form of an alert's page that was not taken (no valid session, or a token of an older one), as
    it was sent. The sign-in form carries it (hidden ``draft_<field>`` inputs, never a URL); routes.py
    decides whether what it held is shown again (a Draft) or only why it was not recorded."""
    alert: str
    action: str  # one of ACTIONS
    verdict: str = ""
    note: str = ""
    seal: str = ""  # sessions.py: proves the form was rendered for the key that signs in again
    replaces: str = ""  # a "Change the verdict" form: the resolved_at of the judgment it was shown

    def fields(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Draft:
    message: str  # why it was not recorded, in the words the page shows
    verdict: str | None = None  # the verdict chosen, when it may be shown again
    note: str = ""  # the note typed, likewise


async def keep(redis: aioredis.Redis, nonce: str, alert_id: str, draft: Draft, *, key_id: str,
               unless_kept: bool = False) -> None:
    """Kept for this session's next showing of the alert's page. Past MAX_SESSIONS sessions' drafts for
    one alert, another session's is not kept: its page shows the alert as it is. ``unless_kept``: not
    over one kept already (a form's empty marker never replaces another tab's refused form). ``key_id``:
    the session's key, whose sessions keep at most MAX_PER_KEY drafts in SECONDS."""
    fields = {**asdict(draft), "note": plain_breaks(draft.note)[:MAX_NOTE_CHARS]}  # as the browser sent it: CRLF
    key = keys.ui_drafts(alert_id)
    if await guarded(redis.hlen(key)) >= MAX_SESSIONS and not await guarded(redis.hexists(key, nonce)):
        return
    if draft.message and not await _counted(redis, key_id):  # a form's empty marker is a few bytes: uncounted
        return
    # UTF-8 as typed: escaped, a character outside the BMP took 12 bytes (\ud83d\ude00), not 4
    value = json.dumps(fields, ensure_ascii=False)
    async with redis.pipeline(transaction=False) as pipe:  # one key: one slot, one round trip
        if unless_kept:
            pipe.hsetnx(key, nonce, value)
        else:
            pipe.hset(key, nonce, value)
        pipe.expire(key, SECONDS)  # another session's draft for the alert lives as long: minutes either way
        await guarded(pipe.execute())


async def _counted(redis: aioredis.Redis, key_id: str) -> bool:
    """One more draft for this key's sessions within SECONDS of the first; False past MAX_PER_KEY."""
    kept = int(await guarded(redis.incr(keys.ui_drafts_kept(key_id))))
    if kept == 1:  # the window starts with the first (EXPIRE NX needs Redis 7)
        await guarded(redis.expire(keys.ui_drafts_kept(key_id), SECONDS))
    return kept <= MAX_PER_KEY


async def drop(redis: aioredis.Redis, nonce: str, alert_id: str) -> None:
    """This session's draft for the alert, unread (its user was erased while it was written)."""
    await guarded(redis.hdel(keys.ui_drafts(alert_id), nonce))


async def take(redis: aioredis.Redis, nonce: str, alert_id: str) -> Draft | None:
    """The draft kept for this session and alert, once: a reload shows the page as it is."""
    key = keys.ui_drafts(alert_id)
    async with redis.pipeline(transaction=False) as pipe:  # read and delete in one round trip (any Redis)
        pipe.hget(key, nonce)
        pipe.hdel(key, nonce)
        raw, _ = await guarded(pipe.execute())
    if raw is None:
        return None
    fields = json.loads(raw)
    return Draft(str(fields["message"]), fields.get("verdict"), str(fields.get("note", "")))


async def forget(redis: aioredis.Redis, alert_ids: list[str]) -> None:
    """Erasure: every session's drafts for these alerts (one key each, in slots of their own)."""
    if not alert_ids:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for alert_id in alert_ids:
            pipe.delete(keys.ui_drafts(alert_id))
        await guarded(pipe.execute())
