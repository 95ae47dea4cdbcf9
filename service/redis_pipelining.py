"""Automatic pipelining: the Redis commands issued during one turn of the event loop go as one pipeline.

A batch of 256 posts of 256 users applies every user's post concurrently, and each post is one advance
script (plus a read when the user's state is not cached). Sent one by one, each command took a
connection from the pool, armed its own timeout and retry wrapper and waited for its own reply: the
largest share of the server's CPU per observed post went into redis-py's per-command path (the py-spy
profile is in docs/performance.md). Queued here, the commands that the event loop's ready coroutines issue before it
next waits go out together on one connection, in one write, and their replies are read back in order.

Nothing about a command changes: the same command with the same arguments, not a transaction (each
script is atomic on its own, as before), each caller gets its own reply or its own error. A command's
order relative to another caller's was never defined (they ran concurrently); a caller's own commands
stay in order because it awaits each reply before sending the next. An error of the connection fails
every command of that pipeline, as it would have failed each one sent alone on it.

Only where many commands are issued at once: ``POST /v1/posts/batch`` sets :data:`BATCHED` for the
tasks it starts. A post sent alone keeps redis-py's own path: waiting a turn to see whether others
come costs CPU per command, for nothing when none do (measured in docs/performance.md).

Only for a single Redis: a Cluster client routes each command to its node and follows ASK / MOVED per
command (state_store.retried), so it keeps sending commands one by one.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

import redis.asyncio as aioredis

# At most this many commands per pipeline: a larger group is split, so one reply stream stays well
# inside the socket timeout (a few ms of Redis time per 512 advance scripts).
MAX_COMMANDS = 512

# True in the tasks of a batch request (service/routes/posts.py): their reads and writes are pipelined.
BATCHED: ContextVar[bool] = ContextVar("emodrift_batched", default=False)


class AutoPipeline:
    def __init__(self, redis: aioredis.Redis, max_commands: int = MAX_COMMANDS) -> None:
        self._redis = redis
        self._max = max_commands
        self._queued: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] | None = None  # this turn's, once one came
        self._sending: set[asyncio.Task[None]] = set()

    async def execute_command(self, *args: Any) -> Any:
        """The reply of ``args`` (as ``Redis.execute_command``), sent with the others of this turn."""
        loop = asyncio.get_running_loop()
        if self._queued is not None:  # another command opened this turn: it sends this one too
            future: asyncio.Future[Any] = loop.create_future()
            self._queued.append((args, future))
            return await future
        # The first of a turn waits one turn for the coroutines the loop is running to queue theirs.
        own: asyncio.Future[Any] = loop.create_future()
        self._queued = queued = [(args, own)]
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:  # this caller gave up; the others it was to send for still go
            self._queued = None
            self._dispatch(queued[1:])
            raise
        self._queued = None
        if len(queued) == 1:  # alone: sent as it would be without this module (a pipeline of one costs more)
            return await self._redis.execute_command(*args)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        self._dispatch(queued)
        return await own

    def _dispatch(self, queued: list[tuple[tuple[Any, ...], "asyncio.Future[Any]"]]) -> None:
        for start in range(0, len(queued), self._max):
            # sent by tasks of their own: a cancelled caller must not take the others' replies with it
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
