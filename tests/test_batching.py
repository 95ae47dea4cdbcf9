"""The micro-batcher: batches form under concurrency, departed callers are dropped and counted, a full
queue answers 429 at the door (the batcher's permits: one limit, from before decoding to the result), a
failing model gives every caller a 503 and the loop lives on."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from service import metrics
from service.batching import MicroBatcher
from service.errors import ModelUnavailable, Overloaded


class FakeModel:
    """Scores an image by its mean; records batch sizes; can be held to let a queue build up."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.gate.wait(5)
        if self.fail:
            raise RuntimeError("boom")
        self.sizes.append(len(batch))
        means = batch.reshape(len(batch), -1).mean(axis=1)  # (B,)
        return np.repeat(means[:, None], 7, axis=1), means[:, None]


def image(value: float) -> np.ndarray:
    return np.full((64, 64), value, dtype=np.float32)


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_batches_and_get_their_own_answers():
    async def main():
        model = FakeModel()
        batcher = MicroBatcher(model, provider="cpu", max_batch=8, max_wait_ms=20)
        await batcher.start()
        try:
            results = await asyncio.gather(*(batcher.submit(image(i)) for i in range(20)))
        finally:
            await batcher.stop()
        return model, results

    model, results = run(main())
    assert [float(p[0]) for p, _ in results] == list(range(20))  # each caller its own row
    assert sum(model.sizes) == 20 and max(model.sizes) == 8 and len(model.sizes) <= 4, model.sizes


def test_a_lone_request_waits_at_most_max_wait():
    async def main():
        model = FakeModel()
        batcher = MicroBatcher(model, provider="cpu", max_batch=32, max_wait_ms=5)
        await batcher.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.submit(image(1))
        elapsed = loop.time() - started
        await batcher.stop()
        return model, elapsed

    model, elapsed = run(main())
    assert model.sizes == [1] and elapsed < 0.5


def test_cancelled_callers_are_dropped_before_inference_and_counted():
    async def main():
        model = FakeModel()
        batcher = MicroBatcher(model, provider="cpu", max_batch=4, max_wait_ms=1)
        await batcher.start()
        model.gate.clear()  # hold the model: the first batch blocks, the rest queue up
        first = asyncio.create_task(batcher.submit(image(0)))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(batcher.submit(image(i))) for i in range(1, 7)]
        await asyncio.sleep(0.01)
        for task in waiting[:3]:
            task.cancel()  # the client went away
        before = metrics.BATCH_DROPPED._value.get()
        model.gate.set()
        done = await asyncio.gather(first, *waiting[3:])
        await batcher.stop()
        return model, done, metrics.BATCH_DROPPED._value.get() - before

    model, done, dropped = run(main())
    assert dropped == 3
    assert sum(model.sizes) == 4  # the three cancelled images never reached the model
    assert [float(p[0]) for p, _ in done] == [0, 4, 5, 6]


def test_a_full_queue_answers_overloaded_at_the_door():
    async def main():
        model = FakeModel()
        batcher = MicroBatcher(model, provider="cpu", max_batch=2, max_wait_ms=1, max_queue=4)
        await batcher.start()
        model.gate.clear()
        first = asyncio.create_task(batcher.submit(image(0)))
        await asyncio.sleep(0.05)  # the first batch holds the model
        # max_queue counts images until their result: the one in the model holds a permit too
        queued = [asyncio.create_task(batcher.submit(image(i))) for i in range(3)]
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(image(9))
        model.gate.set()
        await asyncio.gather(first, *queued)
        await batcher.stop()
        return refused.value

    refused = run(main())
    assert refused.status == 429 and refused.code == "overloaded"


def test_a_failing_model_fails_its_callers_and_the_loop_goes_on():
    async def main():
        model = FakeModel()
        batcher = MicroBatcher(model, provider="cpu", max_batch=4, max_wait_ms=1)
        await batcher.start()
        model.fail = True
        with pytest.raises(ModelUnavailable):
            await batcher.submit(image(1))
        model.fail = False
        probabilities, _ = await batcher.submit(image(2))
        await batcher.stop()
        return probabilities

    assert float(run(main())[0]) == 2.0


def test_a_permit_held_from_before_the_decode_is_the_one_limit():
    """The pipeline takes a permit before decoding and submits under it: images still decoding count
    against max_queue, and each permit comes back with its result (or its failure)."""
    async def main():
        model = FakeModel()
        batcher = MicroBatcher(model, provider="cpu", max_batch=4, max_wait_ms=1, max_queue=2)
        await batcher.start()
        outcomes = []
        with batcher.permit():  # an image "decoding": nothing submitted yet
            with batcher.permit():
                assert batcher.admitted == 2
                with pytest.raises(Overloaded) as refused:  # at the door, before any work
                    with batcher.permit():
                        outcomes.append("decoded")
                with pytest.raises(Overloaded):
                    await batcher.submit(image(9))  # a submit without a permit needs one too
                probabilities, _ = await batcher.submit(image(3), admitted=True)
                outcomes.append(float(probabilities[0]))
        assert batcher.admitted == 0
        model.fail = True
        with pytest.raises(ModelUnavailable):
            await batcher.submit(image(1))
        free = batcher.admitted
        await batcher.stop()
        return refused.value, outcomes, free, model.sizes

    refused, outcomes, free, sizes = run(main())
    assert refused.code == "overloaded" and "2 images are already being scored" in str(refused)
    assert outcomes == [3.0] and free == 0 and sizes == [1]


def test_a_batch_closes_at_its_size_without_waiting_out_max_wait():
    async def main():
        model = FakeModel()
        batcher = MicroBatcher(model, provider="cpu", max_batch=4, max_wait_ms=2000)
        await batcher.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(batcher.submit(image(i)) for i in range(4)))
        elapsed = loop.time() - started
        await batcher.stop()
        return model.sizes, elapsed

    sizes, elapsed = run(main())
    assert sizes == [4] and elapsed < 1.0  # full at 4: closed long before the 2 s budget
