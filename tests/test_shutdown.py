"""Shutdown ends even when a task's cancellation is lost.

On Python 3.11 a cancel that lands just as ``asyncio.wait_for`` times out can be swallowed: the
coroutine sees a timeout instead and goes on, and a loop around it runs forever. A worker once hung
at "Waiting for application shutdown" in the suite, outliving its supervisor; a lost cancellation is
the likely cause. The race cannot be timed from a test, so these steps swallow it on purpose.
"""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import redis.asyncio as aioredis

from service.batching import MicroBatcher
from service.config import Settings
from service.embedded_redis import EmbeddedRedis
from service.webhooks.deliveries import Deliveries
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.subscriptions import Subscriptions


async def _swallow_cancellation() -> None:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        return  # what a lost cancellation looks like to the caller


def test_the_dispatcher_stops_though_a_loop_swallows_its_cancellation(redis_server: EmbeddedRedis) -> None:
    async def scenario() -> bool:
        client = aioredis.Redis.from_url(redis_server.url)
        async with httpx.AsyncClient() as http:
            dispatcher = Dispatcher(client, http, Settings(), Subscriptions(client), Deliveries(client, retention_seconds=60))
            loop = asyncio.create_task(dispatcher._forever(_swallow_cancellation))
            dispatcher._loops = [loop]
            await asyncio.sleep(0.05)
            await asyncio.wait_for(dispatcher.stop(), 3.0)  # the flag ends it, not the timeout
            done = loop.done()
        await client.aclose()
        return done

    assert asyncio.run(scenario())


def test_the_batcher_stops_though_its_loop_swallows_its_cancellation() -> None:
    async def scenario() -> bool:
        batcher = MicroBatcher(lambda x: (np.zeros((len(x), 7)), np.zeros((len(x), 4))), provider="cpu")

        async def collect_swallowing() -> list:
            await _swallow_cancellation()
            return []

        batcher._collect = collect_swallowing  # type: ignore[method-assign]
        await batcher.start()
        await asyncio.sleep(0.05)
        await asyncio.wait_for(batcher.stop(), 3.0)
        return batcher._task is not None and batcher._task.done()

    assert asyncio.run(scenario())
