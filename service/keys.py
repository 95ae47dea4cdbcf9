"""Every Redis key the service writes, in one place (after arq's constants module).

A user's keys share the hash tag ``{<user_id>}`` so they land on one Redis Cluster slot and one
script can touch them atomically.
"""

import re

PREFIX = "ed"


def state(user_id: str) -> str:
    """String: b"<version>|<len(h)>|" + h + c (float32 bytes) + meta (JSON: detector, distributions,
    counts); see state_store.encode_record."""
    return f"{PREFIX}:{{{user_id}}}:state"


def timeline(user_id: str) -> str:
    """List of the user's post results, oldest first, each a compact entry (service/timeline_codec.py)
    that is also the post id's idempotency record: kept while among the last ``timeline_length`` or
    inside the idempotency window. Before issue 17: JSON results (converted on the user's next write)."""
    return f"{PREFIX}:{{{user_id}}}:timeline"


def seen(user_id: str) -> str:
    """String: a 4-byte fingerprint of each timeline entry's post id, in the timeline's order (the
    advance script finds a retried post id with one search; timeline_codec.fingerprint)."""
    return f"{PREFIX}:{{{user_id}}}:seen"


STATE_PATTERN = f"{PREFIX}:{{*}}:state"  # SCAN MATCH for every user's state key (user ids have no glob characters)


def user_of_state(key: str | bytes) -> str:
    """The user id in a state key (the inverse of :func:`state`), e.g. from a SCAN over STATE_PATTERN.

    >>> user_of_state(state("u-1"))
    'u-1'
    """
    text = key.decode() if isinstance(key, bytes) else key
    head, tail = f"{PREFIX}:{{", "}:state"
    if not (text.startswith(head) and text.endswith(tail)):
        raise ValueError(f"not a state key: {text!r}")
    return text[len(head):-len(tail)]


def post(user_id: str, post_id: str) -> str:
    """Before issue 17 (read, converted and deleted by service/legacy_records.py; no longer written):
    String, the first result for this post id, with a TTL."""
    return f"{PREFIX}:{{{user_id}}}:post:{post_id}"


def post_index(user_id: str) -> str:
    """Before issue 17 (as ``post``): sorted set of post ids scored by the expiry of their record."""
    return f"{PREFIX}:{{{user_id}}}:posts"


def alerts(user_id: str) -> str:
    """Hash: the user's alerts, written with the step that raised each (service/alerts/store.py):
    field ``<alert id>`` = the alert (JSON, its lifecycle included); field ``index`` = their
    ``"<created unix seconds>:<alert id>"``, space-separated, oldest first (the last one is the
    user's latest alert). One key for all of them: erasure and retention treat it as one of the user's."""
    return f"{PREFIX}:{{{user_id}}}:alerts"


def pending_events(user_id: str) -> str:
    """List of alert events written with the state and not yet relayed to the outbox stream."""
    return f"{PREFIX}:{{{user_id}}}:pending"


def user_events(user_id: str) -> str:
    """List of "<stream id> <event id>" of this user's relayed events (so erasure can remove them)."""
    return f"{PREFIX}:{{{user_id}}}:events"


def relay_lease(user_id: str) -> str:
    """String: the token of the one relay (or erasure) working on this user's events now, with a TTL.
    Relaying and erasing a user are serialized on it (service/erasure.py says why)."""
    return f"{PREFIX}:{{{user_id}}}:relaying"


def relay_inflight(user_id: str) -> str:
    """String: the time (ms, a minute early) from which a relay that has not committed may have added this
    user's events to the outbox; deleted by its commit. Left behind, it tells the next relay and an
    erasure where to look for what a relay that died added (see outbox.Outbox.relayed_since)."""
    return f"{PREFIX}:{{{user_id}}}:relay-inflight"


# The relay's own keys (one slot of their own): users that may hold unrelayed events, and a lock.
RELAY = f"{PREFIX}:{{relay}}"


def relay_marks() -> str:
    """Sorted set: user ids scored by when a request last meant to write an event for them."""
    return f"{RELAY}:marks"


def drifting_users() -> str:
    """Sorted set of the users currently drifting, scored by when their drift started (kept by the relay)."""
    return f"{RELAY}:drifting"


def relay_lock() -> str:
    """String: the token of the one replica sweeping the relay's marks (with a TTL)."""
    return f"{RELAY}:lock"


def rate_log(key_digest: str) -> str:
    """One API key's admitted requests in the last second, by time (a sorted set, in a slot of its own per key)."""
    return f"{PREFIX}:{{rl:{key_digest}}}"


# --- alerts, across users --------------------------------------------------------------------
# The listing of every user's alerts lives in a slot of its own (a user's script cannot reach it): the
# relay indexes each alert right after the step that wrote it (service/outbox.py), as it relays events.
ALERTS = f"{PREFIX}:{{alerts}}"


def alerts_by_time() -> str:
    """Sorted set: every alert id, scored by when it was recorded (unix seconds)."""
    return f"{ALERTS}:all"


def alerts_by_status(status: str) -> str:
    """Sorted set: the ids of alerts in ``status`` (open, acknowledged, resolved), scored by creation.
    A hint kept after each transition; the alert's own record is the truth (listing repairs the hint)."""
    return f"{ALERTS}:status:{status}"


def alert_owners() -> str:
    """Hash: alert id -> user id (an alert id says nothing about its user)."""
    return f"{ALERTS}:owner"


# --- webhooks -------------------------------------------------------------------------------
# Every webhook key shares the hash tag ``{wh}``: the delivery scripts touch a delivery, the due set,
# its event's open set and the dead-letter stream together, so they must share one Cluster slot.
# Alerts are rare next to posts, so one slot for them is no hotspot.
WEBHOOKS = f"{PREFIX}:{{wh}}"


def webhook_index() -> str:
    """Sorted set: subscription ids scored by creation time."""
    return f"{WEBHOOKS}:subs"


def webhook_ids_ever() -> str:
    """Sorted set: every subscription id ever created (a handful), deleted ones too, so that erasure
    reaches the deliveries of a subscription deleted since; scored by creation time."""
    return f"{WEBHOOKS}:subs-ever"


def webhook(sub_id: str) -> str:
    """Hash: id, url, events (JSON), secret, status (enabled|disabled), created_at, disabled_reason."""
    return f"{WEBHOOKS}:sub:{sub_id}"


def webhook_deliveries(sub_id: str) -> str:
    """Sorted set: this subscription's delivery ids scored by creation time (the delivery log)."""
    return f"{WEBHOOKS}:sub:{sub_id}:dlv"


def delivery(delivery_id: str) -> str:
    """Hash: the delivery record (payload, status, claim counter, schedule base, next attempt)."""
    return f"{WEBHOOKS}:dlv:{delivery_id}"


def delivery_attempts(delivery_id: str) -> str:
    """List of JSON attempts, oldest first."""
    return f"{WEBHOOKS}:dlv:{delivery_id}:attempts"


def deliveries_due() -> str:
    """Sorted set: delivery ids scored by when their next attempt (or lease expiry) is due."""
    return f"{WEBHOOKS}:due"


def event_open(stream_id: str) -> str:
    """Set: delivery ids of one outbox entry without a final outcome; empty means XACK it."""
    return f"{WEBHOOKS}:evt:{stream_id}"


def erased_events() -> str:
    """Sorted set: tombstones of erased users' events (SHA-1 of the event id), scored by when they were erased. The delivery
    scripts refuse to create, claim or record a delivery of a tombstoned event (service/erasure.py)."""
    return f"{WEBHOOKS}:erased"


def dead_letters() -> str:
    """Stream: deliveries that exhausted the schedule or failed for good."""
    return f"{WEBHOOKS}:dead"


# --- the /ui page -------------------------------------------------------------------------------


def ui_signed_out(nonce: str) -> str:
    """String: marks a /ui session as signed out until it would have expired (its TTL); every replica
    refuses the session's cookie from then on. Sessions themselves are not stored (service/ui/sessions.py)."""
    return f"{PREFIX}:ui:signed-out:{nonce}"


def ui_drafts_kept(key_id: str) -> str:
    """Counter: drafts the /ui sessions of one key (the session's key id, an HMAC of the key) kept in the last
    minutes, across alerts (service/ui/drafts.py)."""
    return f"{PREFIX}:ui:drafts-kept:{key_id}"


def ui_drafts(alert_id: str) -> str:
    """Hash: field ``<session nonce>`` = what a refused form of that session held for this alert (JSON:
    action, message, verdict, note), with a TTL of minutes, until the alert's page shows it once
    (service/ui/drafts.py). Keyed by the alert so that erasing its user deletes it (service/erasure.py)."""
    return f"{PREFIX}:ui:drafts:{alert_id}"


# --- live calibration ---------------------------------------------------------------------------
# The population's statistics by user age (service/calibration.py), shared by every replica: one slot
# of their own, so the rotation script touches them together. Per calibration (``model`` below is
# calibration.learned_under's name: the temporal model's tag and its detector configuration's digest):
# another model's scores are another scale, and so are another calibration's thresholds.
CALIBRATION = f"{PREFIX}:{{cal}}"


def calibration_meta(model: str) -> str:
    """Hash: ``gen`` (the generation the counts are written to now)."""
    return f"{CALIBRATION}:{model}:meta"


def calibration_counts(model: str, generation: int) -> str:
    """Hash of counters of one generation (HINCRBY): ``n:<bucket>`` posts judged, ``a:<bucket>`` alarms,
    ``c:<bucket>`` of them judged real changes by a reviewer, ``u:<bucket>:<level>`` /
    ``d:<bucket>:<level>`` excursion peaks after / before a rise."""
    return f"{CALIBRATION}:{model}:gen:{generation}"


def calibration_alarms(model: str, generation: int) -> str:
    """Hash: the alarms counted in one generation, by alert id -> ``<bucket>:<level>:<real>[:<judgment>]``
    (its age bucket, the grid level its excursion peaked at, -1 for none, 1 once a reviewer's verdict said
    it was a real change, and that verdict's judgment number on its alert): what a verdict takes out of
    that generation's counts, and puts back. Goes with its generation (rotation, import)."""
    return f"{calibration_counts(model, generation)}:alarms"


def calibration_counts_match(model: str) -> str:
    r"""A SCAN pattern for every generation's counts of ``model``.

    >>> calibration_counts_match("t:4@a[1]*")
    'ed:{cal}:t:4@a\\[1\\]\\*:gen:*'
    """
    escaped = re.sub(r"([][*?\\])", r"\\\1", model)  # a name's glob characters match only themselves
    return f"{CALIBRATION}:{escaped}:gen:*"


def calibration_scales(model: str) -> str:
    """String (JSON): the scales in force by age bucket, as last learned or imported."""
    return f"{CALIBRATION}:{model}:scales"


def calibration_observed(model: str) -> str:
    """Hash: ``n`` judged posts and ``a`` alarms of every replica, frozen or not, since the calibration
    began (HINCRBY): the recent alarm rate's counts, never rotated, exported or imported."""
    return f"{CALIBRATION}:{model}:observed"


def calibration_ahead(model: str) -> str:
    """Hash: reviewers' verdicts on alarms no replica has sent yet (alert id -> ``<real>:<judgment>``),
    applied when the alarm arrives (``calibration_add``), each kept an hour (``calibration_ahead_times``)."""
    return f"{CALIBRATION}:{model}:ahead"


def calibration_ahead_times(model: str) -> str:
    """Sorted set: when each verdict of ``calibration_ahead`` was put there (unix seconds), to drop it after
    an hour on its own."""
    return f"{CALIBRATION}:{model}:ahead-times"


def calibration_recent(model: str) -> str:
    """Sorted set: the history of ``calibration_observed``'s totals, a point (``<posts>:<alarms>``, score
    its posts) every few hundred posts: the window the recent alarm rate is read over, shared by every
    replica (``calibration_observe``)."""
    return f"{CALIBRATION}:{model}:recent"


def calibration_of(key: str) -> str | None:
    """The calibration a key of the eight above belongs to, None for any other key. A name holds colons
    itself (``temporal:4@...``), so the known tails are cut off its right end.

    >>> [calibration_of(k) for k in (calibration_meta("t:4@a"), calibration_counts("t:4@a", 3),
    ...                              calibration_scales("t:4@a"), calibration_observed("t:4@a"), "ed:user:x",
    ...                              f"{CALIBRATION}:t:4@a:gen:x", calibration_alarms("t:4@a", 3),
    ...                              calibration_recent("t:4@a"), calibration_ahead("t:4@a"),
    ...                              calibration_ahead_times("t:4@a"))]
    ['t:4@a', 't:4@a', 't:4@a', 't:4@a', None, None, 't:4@a', 't:4@a', 't:4@a', 't:4@a']
    """
    head = f"{CALIBRATION}:"
    if not key.startswith(head):
        return None
    rest = key[len(head):]
    for tail in (":meta", ":scales", ":observed", ":recent", ":ahead", ":ahead-times"):
        if rest.endswith(tail):
            return rest[: -len(tail)]
    name, sep, generation = rest.removesuffix(":alarms").rpartition(":gen:")
    return name if sep and generation.isdigit() else None
