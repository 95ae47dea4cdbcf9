"""Decoding slots shared fairly between users: ``FairSlots``.

The decode threads were taken first come, first served (an ``asyncio.Semaphore``), so one user's flood
of costly but allowed images held every other user's post behind all of it (an audit: 40 CMYK strips
of one user, and a plain 12 Mpx photo of another waited 14.9 s). Waiters now queue per key (the user
id), and a freed slot goes to the keys in turn: a post of a user with nothing queued waits for at most
one turn of each other user's queue, not for the whole of it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    """``slots`` held at once; waiters served round-robin by key, each key's own in arrival order."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}  # keys in turn order: the next is first

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, deque()).append(granted)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._release()  # granted as it was cancelled: the slot goes on to the next waiter
                else:
                    self._forget(key, granted)
                raise
        try:
            yield
        finally:
            self._release()

    def waiting(self) -> int:
        """Waiters, all keys together."""
        return sum(len(queue) for queue in self._waiting.values())

    def _release(self) -> None:
        while self._waiting:
            key = next(iter(self._waiting))
            queue = self._waiting.pop(key)
            granted = queue.popleft()
            if queue:
                self._waiting[key] = queue  # to the back of the turn: the other keys go first
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1

    def _forget(self, key: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is not None and granted in queue:
            queue.remove(granted)
            if not queue:
                del self._waiting[key]
