"""Automatic pipelining: the Redis commands issued during one turn of the event loop go as one pipeline.

A batch of 256 posts of 256 users applies every user's post concurrently, and each post is one advance
script (plus a read when the user's state is not cached). Sent one by one, each command took a
connection from the pool, armed its own timeout and retry wrapper and waited for its own reply: about
40% of the server's CPU per observed post went into redis-py's per-command path (py-spy,
docs/performance.md). Queued here, the commands that the event loop's ready coroutines issue before it
next waits go out together on one connection, in one write, and their replies are read back in order.

Nothing about a command changes: the same command with the same arguments, not a transaction (each
script is atomic on its own, as before), each caller gets its own reply or its own error. A command's
order relative to another caller's was never defined (they ran concurrently); a caller's own commands
stay in order because it awaits each reply before sending the next. An error of the connection fails
every command of that pipeline, as it would have failed each one sent alone on it.

Only for a single Redis: a Cluster client routes each command to its node and follows ASK / MOVED per
command (state_store.retried), so it keeps sending commands one by one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

# At most this many commands per pipeline: a larger group is split, so one reply stream stays well
# inside the socket timeout (a few ms of Redis time per 512 advance scripts).
MAX_COMMANDS = 512


class AutoPipeline:
    def __init__(self, redis: aioredis.Redis, max_commands: int = MAX_COMMANDS) -> None:
        self._redis = redis
        self._max = max_commands
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def execute_command(self, *args: Any) -> "asyncio.Future[Any]":
        """The reply of ``args`` (as ``Redis.execute_command``), sent with the others queued this turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:  # the first of this turn: send them all once the ready callbacks have run
            loop.call_soon(self._flush)
        self._queued.append((args, future))
        return future

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        for start in range(0, len(queued), self._max):
            task = asyncio.ensure_future(self._send(queued[start:start + self._max]))
            self._sending.add(task)  # held: the loop keeps only weak references to tasks
            task.add_done_callback(self._sending.discard)

    async def _send(self, queued: list[tuple[tuple[Any, ...], "asyncio.Future[Any]"]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for args, _ in queued:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every command of it did
            for _, future in queued:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): the callers are told, then it propagates
            for _, future in queued:
                future.cancel()
            raise
        for (_, future), reply in zip(queued, replies):
            if future.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
