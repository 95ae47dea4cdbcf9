"""Every Redis script of the service: ``service/lua/<name>.lua``, called by the names of its keys and arguments.

Each script is declared once, below: its file, the names of its KEYS and of its ARGV in order (and,
for the few that take a variable number, the name of that tail), and the statuses it answers. Its
file begins with a header comment (what it does, its keys, arguments and replies) and gives every
``KEYS[i]`` a local ``<name>_key`` and every ``ARGV[i]`` a local ``<name>``, in the declared order
(tests/test_lua_scripts.py holds each file to its declaration).

A module binds a script to its client once (redis-py's ``register_script``: EVALSHA, loaded again on
NOSCRIPT; the Redis Cluster client sends it to the node of its keys' slot) and calls it by name::

    self._swap = lua.ALERT_SWAP.bind(redis)
    reply = await self._swap(keys={"alerts": keys.alerts(user_id)},
                             args={"alert_id": alert_id, "expected": raw, "replacement": new})
    if reply.status == "conflict": ...

A name missing or unknown raises ``ScriptCallError`` before anything reaches Redis. Every script answers
a status string (``'ok'``, ``'conflict'``, ...; never a magic number), or an array whose first element
is the status and the rest values; a status the script does not declare raises ``ScriptReplyError``.
docs/lua.md: the conventions and the status vocabulary; docs/lua_scripts.md (``make docs``) lists the scripts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT


class ScriptCallError(ValueError):
    """A script called with a key or argument name it does not declare, or without one it does."""


class ScriptReplyError(RuntimeError):
    """A script answered a status it does not declare: the script and its caller disagree."""


@dataclass(frozen=True)
class Reply:
    """A script's answer: its status and the values after it (as redis-py returns them: bytes, ints, lists)."""

    status: str
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Script:
    """One script's declaration: names in KEYS/ARGV order, the name of a variable-length tail, statuses."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str, ...]
    statuses: tuple[str, ...]
    key_tail: str | None = None
    arg_tail: str | None = None
    text: str = field(default="", repr=False)

    def bind(self, redis: Any) -> Bound:
        """The script registered with ``redis`` (a client or a cluster client), ready to call."""
        return Bound(self, redis.register_script(self.text))

    def positions(self, keys: Mapping[str, KeyT], args: Mapping[str, EncodableT],
                  key_tail: Sequence[KeyT], arg_tail: Sequence[EncodableT]) -> tuple[list[KeyT], list[EncodableT]]:
        """KEYS and ARGV in the order the script reads them, or ScriptCallError."""
        _check(self.name, "key", self.keys, keys)
        _check(self.name, "argument", self.args, args)
        if key_tail and self.key_tail is None:
            raise ScriptCallError(f"{self.name} takes no variable keys")
        if arg_tail and self.arg_tail is None:
            raise ScriptCallError(f"{self.name} takes no variable arguments")
        return [keys[name] for name in self.keys] + list(key_tail), [args[name] for name in self.args] + list(arg_tail)

    def reply(self, raw: Any) -> Reply:
        """The raw answer as a Reply, or ScriptReplyError when its status is not one this script declares."""
        head, values = (raw[0], tuple(raw[1:])) if isinstance(raw, list) and raw else (raw, ())
        status = head.decode() if isinstance(head, bytes) else head
        if status not in self.statuses:
            raise ScriptReplyError(f"{self.name} answered {head!r:.80}; it declares {', '.join(self.statuses)}")
        return Reply(status, values)


def _check(script: str, what: str, declared: tuple[str, ...], given: Mapping[str, Any]) -> None:
    missing, unknown = [n for n in declared if n not in given], [n for n in given if n not in declared]
    if missing or unknown:
        raise ScriptCallError(f"{script}: {what}s missing {missing}, unknown {unknown} (declared: {list(declared)})")


@dataclass(frozen=True)
class Bound:
    """A script registered with one client; call it with keys and arguments by name."""

    script: Script
    registered: AsyncScript

    async def __call__(self, *, keys: Mapping[str, KeyT], args: Mapping[str, EncodableT] | None = None,
                       key_tail: Sequence[KeyT] = (), arg_tail: Sequence[EncodableT] = ()) -> Reply:
        positional_keys, positional_args = self.script.positions(keys, args or {}, key_tail, arg_tail)
        return self.script.reply(await self.registered(keys=positional_keys, args=positional_args))

    async def through(self, execute: Callable[..., Awaitable[Any]], *, keys: Mapping[str, KeyT],
                      args: Mapping[str, EncodableT] | None = None, key_tail: Sequence[KeyT] = (),
                      arg_tail: Sequence[EncodableT] = ()) -> Reply:
        """The same call sent as EVALSHA by ``execute`` (an ``execute_command``, e.g.
        redis_pipelining.AutoPipeline's), the script loaded first where Redis does not know it yet."""
        positional_keys, positional_args = self.script.positions(keys, args or {}, key_tail, arg_tail)
        command = ("EVALSHA", self.registered.sha, len(positional_keys), *positional_keys, *positional_args)
        try:
            raw = await execute(*command)
        except NoScriptError:  # a fresh (or flushed) Redis: load it, then run it (a batch's loads go together)
            await execute("SCRIPT", "LOAD", self.script.text)
            raw = await execute(*command)
        return self.script.reply(raw)


REGISTRY: dict[str, Script] = {}


def declare(name: str, *, keys: Sequence[str], args: Sequence[str] = (), statuses: Sequence[str],
            key_tail: str | None = None, arg_tail: str | None = None) -> Script:
    """Declare the script of ``service/lua/<name>.lua`` (its text read once, here) under a unique name."""
    if name in REGISTRY:
        raise ValueError(f"a script named {name} is declared already")
    text = resources.files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    script = Script(name, tuple(keys), tuple(args), tuple(statuses), key_tail, arg_tail, text)
    REGISTRY[name] = script
    return script


# --- one user's state (service/state_store.py, service/legacy_records.py) --------------------------------
STATE_ADVANCE = declare(
    "state_advance",
    keys=("state", "timeline", "seen", "post_index", "pending", "alerts"),
    args=("expected_version", "record_tail", "entry", "timeline_length", "idempotency_ttl", "now", "event",
          "post_id", "retention_seconds", "index_entry", "alerts_per_user", "fingerprint"),
    statuses=("ok", "duplicate", "conflict", "migrate", "unseen"))
STATE_ERASE = declare(
    "state_erase",
    keys=("state", "timeline", "post_index", "pending", "user_events", "alerts", "relay_inflight", "seen"),
    args=("post_prefix",), statuses=("ok",))
LEGACY_CONVERT = declare(
    "legacy_convert", keys=("state", "timeline", "seen", "post_index"), key_tail="record_keys",
    args=("version", "retention_seconds", "seen"), arg_tail="entries", statuses=("ok", "conflict"))

# --- the outbox relay (service/outbox.py) ------------------------------------------------------------------
OUTBOX_UNMARK = declare("outbox_unmark", keys=("marks",), args=("user_id", "score_seen"), statuses=("ok", "conflict"))
OUTBOX_RELEASE = declare("outbox_release", keys=("lock",), args=("token",), statuses=("ok", "stale"))
OUTBOX_COMMIT = declare(
    "outbox_commit", keys=("lease", "pending", "user_events", "relay_inflight"),
    args=("token", "first_read", "read_count", "cutoff_ms", "retention_seconds"), arg_tail="refs",
    statuses=("ok", "stale"))

# --- webhook deliveries and subscriptions (service/webhooks/) ----------------------------------------------
DELIVERY_ENQUEUE = declare(
    "delivery_enqueue", keys=("open", "due", "erased"), key_tail="delivery_keys",
    args=("now", "event_id", "log_length"), arg_tail="delivery_args", statuses=("ok", "erased"))
DELIVERY_CLAIM = declare(
    "delivery_claim", keys=("due", "delivery", "attempts", "erased"), args=("delivery_id", "now", "lease_until"),
    statuses=("ok", "not_due", "not_pending", "erased"))
DELIVERY_RECORD = declare(
    "delivery_record",
    keys=("delivery", "attempts", "due", "open", "dead_letters", "subscription", "erased"),
    args=("delivery_id", "token", "attempt", "new_status", "next_attempt_at", "now", "retention_seconds", "reason",
          "dead_letter_maxlen"),
    statuses=("ok", "pending", "stale", "erased"))
DELIVERY_RELEASE = declare("delivery_release", keys=("delivery", "due"), args=("delivery_id", "token", "now"),
                           statuses=("ok", "stale"))
DELIVERY_REPLAY = declare(
    "delivery_replay", keys=("delivery", "attempts", "due", "subscription"), args=("delivery_id", "now", "force"),
    statuses=("ok", "missing", "pending", "delivered", "disabled"))
DELIVERY_FORGET = declare(
    "delivery_forget", keys=("erased", "due", "open"), key_tail="delivery_keys",
    args=("event_id", "now", "tombstone_cutoff"), arg_tail="delivery_ids", statuses=("ok", "busy"))
WEBHOOK_ROTATE_SECRET = declare("webhook_rotate_secret", keys=("subscription",),
                                args=("secret", "previous_until", "now", "keep"), statuses=("ok", "missing"))
WEBHOOK_ENABLE = declare("webhook_enable", keys=("subscription",), statuses=("ok", "missing"))

# --- alerts (service/alerts/) -------------------------------------------------------------------------------
ALERTS_EXPIRE_OLD = declare("alerts_expire_old", keys=("by_time", "owners"), key_tail="status_keys",
                            args=("cutoff", "batch"), statuses=("ok",))
ALERTS_MOVE = declare("alerts_move", keys=("target", "owners"), key_tail="other_keys", args=("alert_id", "score"),
                      statuses=("ok", "missing"))
ALERTS_REMOVE = declare("alerts_remove", keys=("by_time", "owners"), key_tail="status_keys", arg_tail="alert_ids",
                        statuses=("ok",))
ALERT_SWAP = declare("alert_swap", keys=("alerts",), args=("alert_id", "expected", "replacement"),
                     statuses=("ok", "missing", "conflict"))

# --- live calibration (service/calibration.py) and rate limiting (service/rate_limit.py) --------------------
CALIBRATION_ADD = declare("calibration_add", keys=("meta", "counts", "alarms", "ahead", "ahead_times"),
                          args=("generation", "counter_values"),
                          arg_tail="counters", statuses=("ok", "stale"))
CALIBRATION_ROTATE = declare("calibration_rotate", keys=("meta", "previous_counts", "previous_alarms"),
                             args=("generation",), statuses=("ok", "conflict"))
CALIBRATION_JUDGE = declare("calibration_judge", keys=("ahead", "ahead_times"), key_tail="generations",
                            args=("alarm_id", "real", "judgment", "now", "ahead_seconds"),
                            statuses=("ok", "missing"))
CALIBRATION_OBSERVE = declare("calibration_observe", keys=("observed", "history"),
                              args=("posts", "alarms", "window", "step", "keep"), statuses=("ok",))
CALIBRATION_STORE = declare("calibration_store", keys=("scales",), args=("expected", "scales"),
                            statuses=("ok", "conflict"))
RATE_WINDOW = declare("rate_window", keys=("log",), args=("limit", "now", "member", "ttl_milliseconds"),
                      statuses=("ok", "refused"))
