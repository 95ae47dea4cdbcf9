"""The micro-batcher: concurrent requests share one CNN call.

A handle over one task that owns the queue (after text-embeddings-inference's queue): callers
``await submit(pixels)``; the task closes a batch when it holds ``max_batch`` images or the first
image has waited ``max_wait``; images whose caller has gone (cancelled future) are dropped before
inference and counted. The CNN runs in a dedicated thread so the event loop keeps accepting requests
meanwhile.

Backpressure is at the door, and the batcher owns it (TEI's permit): an image takes a permit with
:meth:`MicroBatcher.permit` before any work is done on it (the pipeline takes it before decoding) and
gives it back with its CNN result; at most ``max_queue`` permits are out, and one more raises
``Overloaded`` (429). The decode pool's own queue is unbounded, so a bound on the batcher's queue
alone would let images pile up in front of it; this one limit covers decode, queue and model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from service import metrics
from service.errors import ModelUnavailable, Overloaded

RunBatch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class _Pending:
    pixels: np.ndarray  # (64, 64) float32
    future: asyncio.Future[tuple[np.ndarray, np.ndarray]]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    def __init__(
        self, run: RunBatch, *, provider: str, max_batch: int = 32, max_wait_ms: float = 2.0, max_queue: int = 1024
    ) -> None:
        self._run = run
        self._provider = provider
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000.0
        self._max_queue = max_queue
        self._permits = 0  # images admitted: from before their decode to their CNN result
        self._queue: asyncio.Queue[_Pending] | None = None
        self._arrived = asyncio.Event()  # set by submit: wakes a batch that is still filling
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnn")
        self._stopping = False
        self.batches = 0  # lifetime count, for tests and /v1/model

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="micro-batcher")

    async def stop(self, timeout: float = 5.0) -> None:
        # _collect waits with asyncio.timeout, which passes a cancellation on (Python 3.11's wait_for
        # could swallow one that landed as it timed out). The flag and the bounded wait stay as a
        # guard: a loop that loses its cancellation anyway still ends, and shutdown never hangs.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=timeout)
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(ModelUnavailable("the service is shutting down"))
        self._executor.shutdown(wait=True)

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def admitted(self) -> int:
        """Permits out: images between their admission and their CNN result."""
        return self._permits

    @contextmanager
    def permit(self) -> Iterator[None]:
        """One image's place, held from before its decode until its CNN result; ``Overloaded`` (429)
        when ``max_queue`` images hold one already, before any work is done on this one."""
        if self._permits >= self._max_queue:
            raise Overloaded(f"{self._permits} images are already being scored; retry shortly")
        self._permits += 1
        try:
            yield
        finally:
            self._permits -= 1

    async def submit(self, pixels: np.ndarray, *, admitted: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Score one (64,64) image; returns (probabilities (7,), embedding (E,)). ``admitted``: the
        caller holds a :meth:`permit` for it already (the pipeline, from before the decode); else the
        image takes one here."""
        if self._queue is None or self._task is None or self._task.done():
            raise ModelUnavailable("the inference queue is not running")
        if admitted:
            return await self._enqueue(pixels)
        with self.permit():
            return await self._enqueue(pixels)

    async def _enqueue(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self._queue is not None
        item = _Pending(pixels, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(item)
        self._arrived.set()
        metrics.QUEUE_DEPTH.inc()
        return await item.future

    async def _collect(self) -> list[_Pending]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = batch[0].enqueued + self._max_wait
        while True:
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            remaining = deadline - time.perf_counter()
            if len(batch) >= self._max_batch or remaining <= 0:
                break
            # Wait for the next arrival or the deadline: one timer per batch, not one wait_for per image.
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                pass  # take what has arrived meanwhile, then close the batch
        metrics.QUEUE_DEPTH.dec(len(batch))
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            batch = await self._collect()
            live = [item for item in batch if not item.future.done()]
            if len(live) < len(batch):
                metrics.BATCH_DROPPED.inc(len(batch) - len(live))
            if not live:
                continue
            started = time.perf_counter()
            for item in live:
                metrics.QUEUE_WAIT.observe(started - item.enqueued)
            pixels = np.stack([item.pixels for item in live])[:, None, :, :]  # (B, 1, 64, 64)
            try:
                probabilities, embedding = await loop.run_in_executor(self._executor, self._run, pixels)
            except Exception as exc:  # the model failed: every caller gets a 503, the loop lives on
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(ModelUnavailable(f"inference failed: {exc}"))
                continue
            metrics.INFERENCE_LATENCY.labels(self._provider).observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.labels(self._provider).observe(len(live))
            self.batches += 1
            for i, item in enumerate(live):
                if not item.future.done():
                    item.future.set_result((probabilities[i], embedding[i]))
