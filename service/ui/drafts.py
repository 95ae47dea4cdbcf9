"""A form the page did not take, kept for one showing of its alert's page: what the analyst chose and
typed, and why it was not recorded.

A refused action answers with a redirect to the alert's page (reloading it posts nothing again, and
its address is the alert's), so what the form held must outlive the request: it is kept in Redis
under the session's nonce and the alert's id, never in a URL (which lands in logs and history), for
``SECONDS``, and the next showing of that page takes it. Only the session that kept a draft can
read it. Who may keep one (the session's own forms; a form of an ended session only when its seal
proves it was rendered for the key that signs in again) is decided in routes.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis

from service import keys
from service.alerts.lifecycle import plain_breaks
from service.state_store import guarded

SECONDS = 300  # from the refusal to the page it redirects to: one redirect, or a sign-in and one
ACTIONS = ("acknowledge", "resolve")


@dataclass(frozen=True)
class Draft:
    action: str  # one of ACTIONS
    message: str  # why it was not recorded, in the words the page shows
    verdict: str | None = None  # the verdict chosen, when it may be shown again
    note: str = ""  # the note typed, likewise


async def keep(redis: aioredis.Redis, nonce: str, alert_id: str, draft: Draft) -> None:
    fields = {**asdict(draft), "note": plain_breaks(draft.note)}  # as the browser sent it: CRLF
    await guarded(redis.set(keys.ui_draft(nonce, alert_id), json.dumps(fields), ex=SECONDS))


async def take(redis: aioredis.Redis, nonce: str, alert_id: str) -> Draft | None:
    """The draft kept for this session and alert, once: a reload shows the page as it is."""
    key = keys.ui_draft(nonce, alert_id)
    async with redis.pipeline(transaction=False) as pipe:  # GET and DEL in one round trip (any Redis)
        pipe.get(key)
        pipe.delete(key)
        raw, _ = await guarded(pipe.execute())
    if raw is None:
        return None
    fields = json.loads(raw)
    return Draft(str(fields["action"]), str(fields["message"]), fields.get("verdict"), str(fields.get("note", "")))
