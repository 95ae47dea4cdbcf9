"""Erase a user everywhere, winning every race: after ``erase`` returns, nothing about the user is
delivered or left, whatever was in flight (issue 14: in 23 of 60 trials an alert raised by a post
racing the DELETE survived it, and receivers got it afterwards).

Where a user's alert can be while a DELETE runs, and what stops each:

1. **In a request that has not written its step yet.** Nothing to do: the advance script compares the
   state's version, and an erased user has none, so the step computed on the old state is refused and
   recomputed on a fresh one. A post whose write reaches Redis after the erasure therefore starts a
   new user (one post, ``warming_up``, no alert from the old history). No tombstone in the user's own
   slot: it would have to block the new user too, and the key would carry the erased id.
2. **In the user's ``pending`` list, or being relayed to the outbox.** Relaying and erasing are
   serialized per user on the relay lease (``keys.relay_lease``, ``Outbox.take_lease``): the erasure
   waits for a relay that has read ``pending`` to record its stream ids, then deletes the user's keys
   (``pending`` included) and the outbox entries of every recorded id. A relay that stalls past its
   lease finds it gone at its commit and takes its entries back; one that died between its ``XADD``
   and its commit left an in-flight mark, from which the erasure finds what it added.
3. **Read from the outbox by a dispatcher, in a delivery, or on the wire.** Each erased event id gets
   a *tombstone* in the webhook slot (``keys.erased_events``, kept ``EMODRIFT_ERASURE_TOMBSTONE_SECONDS``):
   the delivery scripts refuse to create, claim or record a delivery of a tombstoned event. Deliveries
   whose attempt is on the wire (leased) are waited for, at most the attempt's lease, then deleted: so
   a receiver never gets the alert after the 204.

Why both, and not one: a user's keys, the outbox stream and the webhook keys live in three Redis
Cluster slots, so no script sees them together. Serializing on the lease closes the gap between the
user's slot and the stream (the relay's read and its ``XADD``) without a tombstone the advance script
would have to check; the tombstones close the gap between the stream and the webhook slot, where
dispatchers of every replica read entries at any time and could not take a per-user lock cheaply.
Tombstones hold digests of event ids, never the user id nor the event id itself.

The user's own keys go last, so a DELETE answered 503 part-way leaves them for its retry to find,
and the retry does every step again (they are idempotent): deleted first, a failure after them left the
alerts in webhook deliveries, replayable, and the retry answered 404.

What it costs: a DELETE waits at most ``EMODRIFT_RELAY_LEASE_SECONDS`` for a relay and the webhook
timeout plus its lease margin for an attempt on the wire (both rare; usually it does not wait). What it
does not cover: a relay that stalls past its lease between its ``XADD`` and its commit while an erasure
runs takes its entries back when it resumes, but a dispatcher may have read them meanwhile.

The user's alerts (service/alerts/) go the same way: their records with the user's keys, and their
entries in the listing across users while the lease is held. The listing is written only by a relay
holding the lease, never from outbox entries, so it needs no tombstone check.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from service.alerts.store import AlertStore
from service.errors import StoreUnavailable
from service.state_store import StateStore, guarded
from service.ui import drafts
from service.webhooks.deliveries import Deliveries
from service.webhooks.subscriptions import Subscriptions

POLL_SECONDS = 0.01  # how often an erasure looks again at an attempt on the wire


class Eraser:
    def __init__(self, store: StateStore, alerts: AlertStore, subscriptions: Subscriptions, deliveries: Deliveries, *,
                 consumer_group: str, attempt_lease_seconds: float, tombstone_seconds: float) -> None:
        self.store, self.alerts, self.subscriptions, self.deliveries = store, alerts, subscriptions, deliveries
        self.group = consumer_group
        self.attempt_lease = attempt_lease_seconds
        self.tombstone_seconds = tombstone_seconds

    async def erase(self, user_id: str) -> bool:
        """Erase every trace of ``user_id``; False when there was nothing to erase.

        The user's own keys go last: whatever fails before them (a 503 that asks for a retry) leaves
        them, so the retry finds the user and does it all again. Deleted first, a failure in a later
        step left the alerts in webhook deliveries, replayable, and the retry found no user (404)."""
        relay = self.store.relay
        token = uuid.uuid4().hex
        # A relay holds the lease at most `lease` seconds: waiting a little longer always gets it. Held
        # long enough for attempts on the wire to end (_forget): no relay may add events meanwhile.
        hold = relay.lease + self.attempt_lease + 2.0
        if not await guarded(relay.take_lease(user_id, token, relay.lease + 1.0, hold=hold)):
            raise StoreUnavailable("the user's events are being relayed; retry the erasure")
        try:
            # what relays recorded, and what one that died added without recording it
            refs = await guarded(relay.event_refs(user_id)) + await guarded(relay.left_in_flight(user_id))
            alert_ids = await self.alerts.ids_of(user_id)
            if refs:
                await guarded(self.store.redis.xack(relay.stream, self.group, *[stream_id for stream_id, _ in refs]))
                # deleted subscriptions too: the deliveries they made keep their payloads until retention ends
                subscriptions = await self.subscriptions.ids_ever()
                for stream_id, event_id in refs:
                    await self._forget(stream_id, event_id, subscriptions)
            await self.alerts.unlist(alert_ids)
            # a /ui form's note about the user: before the user's keys, which its retry needs to find the
            # alerts by (a reply lost after the script: the retry is a 404); again after them, for a
            # draft kept in between (the page keeps none of an alert that is gone)
            await drafts.forget(self.store.redis, alert_ids)
            erased = await self.store.erase(user_id)
            await drafts.forget(self.store.redis, alert_ids)
        finally:
            await guarded(relay.drop_lease(user_id, token))
        return erased > 0

    async def _forget(self, stream_id: str, event_id: str, subscriptions: list[str]) -> None:
        deadline = time.monotonic() + self.attempt_lease + 1.0
        while await self.deliveries.forget_event(stream_id, event_id, subscriptions,
                                                 tombstone_seconds=self.tombstone_seconds):
            if time.monotonic() > deadline:  # leases end by then even if their replica died
                raise StoreUnavailable("a delivery about the user is still on the wire; retry the erasure")
            await asyncio.sleep(POLL_SECONDS)
