"""A user's batch items are applied in the order given, even when some are refused to be retried.

An outside audit: under load, a batch's image items were answered ``overloaded`` (retry shortly)
while the same user's later observation items were applied. The user's timeline read p1, p3, p5...:
resending the refused items could only add them after later posts. Now an item refused with an error
to retry (429, 503) holds back its user's later items, and a batch of which nothing was applied for
such a reason is refused whole, with Retry-After."""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from service.embedded_redis import EmbeddedRedis
from tests import image_fixtures as img
from tests.conftest import RunningService, start_service
from tests.test_work_bounds import big_plain_png

HAPPY = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.02, "surprise": 0.03, "neutral": 0.05}


@pytest.fixture(scope="module")
def crowded(redis_server: EmbeddedRedis) -> Iterator[RunningService]:
    # 2 images in flight per process; no live calibration: its population figures would reach the session service
    running = start_service(redis_url=redis_server.url, max_queue=2, live_calibration=False)
    yield running
    running.stop()


def _mixed(user: str, n: int) -> list[dict]:
    face = base64.b64encode(img.face_jpeg("happy", size=256)).decode()
    return [{"user_id": user, "post_id": f"p{i}", **({"image_base64": face} if i % 2 == 0 else {"probabilities": HAPPY})}
            for i in range(n)]


def test_items_after_a_refused_one_are_held_back_not_applied_out_of_order(crowded: RunningService) -> None:
    with crowded.client() as http:
        answer = http.post("/v1/posts/batch", json={"items": _mixed("mixb", 16)})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        timeline = [p["post_id"] for p in http.get("/v1/users/mixb/timeline").json()["posts"]]
    refused = [r["index"] for r in results if "error" in r]
    assert refused, "max_queue=2 did not refuse any of 8 concurrent images: the test shows nothing"
    first = refused[0]
    assert refused == list(range(first, 16)), refused  # nothing after the first refusal was applied
    assert timeline == [f"p{i}" for i in range(first)]  # a prefix of the items, in their order
    held = results[first + 1]["error"]
    assert held["code"] == results[first]["error"]["code"] == "overloaded"
    assert f"item {first}" in held["message"], held


def test_a_batch_of_which_nothing_was_applied_for_load_is_a_429(crowded: RunningService) -> None:
    """Every item refused to be retried: the batch as a whole is that refusal (429 with Retry-After), so
    a client that looks only at the status sends it again, instead of reading 200 as done."""
    slow = big_plain_png()
    pipeline = crowded.server.config.app.state.pipeline

    def hold_a_permit(i: int) -> None:
        with crowded.client() as own:
            assert own.post(f"/v1/users/holder{i}/posts", files={"image": ("s.png", slow)},
                            data={"post_id": "slow"}).status_code == 200

    holders = [threading.Thread(target=hold_a_permit, args=(i,)) for i in range(2)]
    for holder in holders:
        holder.start()
    deadline = time.monotonic() + 10
    while pipeline.batcher.admitted < 2 and time.monotonic() < deadline:  # both permits held now
        time.sleep(0.005)
    face = base64.b64encode(img.face_jpeg("happy", size=256)).decode()
    with crowded.client() as http:
        answer = http.post("/v1/posts/batch", json={"items": [
            {"user_id": f"crowd{i}", "post_id": "p0", "image_base64": face} for i in range(3)]})
        for holder in holders:
            holder.join()
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "1", answer.text
        assert answer.json()["error"]["code"] == "overloaded"
        assert http.get("/v1/users/crowd0").status_code == 404  # nothing applied


def test_a_race_lost_to_another_writer_holds_back_the_users_later_items_too() -> None:
    """state_conflict (409, Retry-After) is a refusal to retry as well: with two replicas writing one user
    and few compare-and-set retries, a batch applied 196 of a user's 200 items around 4 refused ones (a
    re-audit). The race is a matter of timing, so the store's refusal is made here, once, for item 1."""
    from service.errors import StateConflict
    from service.routes.posts import _InOrder
    from service.schemas import BatchItem
    from service.transition import Scored

    applied: list[str] = []

    class Racing:
        async def apply(self, user_id: str, post_id: str, created_at: object, score: Scored, backfill: bool) -> dict:
            if post_id == "p1" and "p1" not in applied:
                applied.append("refused p1")
                raise StateConflict("the user was advanced concurrently; retry")
            applied.append(post_id)
            return {"post_id": post_id}

    items = [BatchItem.model_validate({"user_id": "u", "post_id": f"p{i}", "probabilities": HAPPY}) for i in range(4)]
    scored = Scored(np.full(7, 1 / 7, dtype=np.float32), True, "observation")
    results: list[dict] = [{} for _ in items]
    applying = _InOrder(Racing(), None, results, False)  # type: ignore[arg-type]
    asyncio.run(applying.user([(i, item, scored) for i, item in enumerate(items)]))
    assert applied == ["p0", "refused p1"]  # p2 and p3 wait for p1's resend
    assert [r.get("error", {}).get("code") for r in results] == [None, "state_conflict", "state_conflict", "state_conflict"]
    assert "item 1 of user u was refused" in results[2]["error"]["message"]


def test_a_users_items_sent_newest_first_are_refused_before_any_is_scored(client) -> None:  # type: ignore[no-untyped-def]
    """History sent newest first (ORDER BY created_at DESC) was applied as given: the user's change ran
    backwards, their alert said "sad → happy" and their baseline was the new mood (an integration audit)."""
    face = base64.b64encode(img.face_jpeg("happy", size=256)).decode()
    days = [f"2026-10-{d:02d}T12:00:00Z" for d in (1, 2, 3, 3, 4)]
    items = [{"user_id": "sorted", "post_id": f"s{i}", "created_at": day, "probabilities": HAPPY}  # ties are in order
             for i, day in enumerate(days)]
    items += [{"user_id": "reversed", "post_id": f"r{i}", "created_at": day,
               **({"image_base64": face} if i == 0 else {"probabilities": HAPPY})}
              for i, day in enumerate(reversed(days))]
    items.append({"user_id": "undated", "post_id": "u0", "probabilities": HAPPY})
    faces_before = _faces_looked_for(client)
    results = client.post("/v1/posts/batch", json={"items": items, "backfill": True}).json()["results"]
    assert [r.get("drift", {}).get("posts_seen") for r in results[:5]] == [1, 2, 3, 4, 5]
    for result in results[5:10]:
        assert result["error"]["code"] == "out_of_order", result
        assert "the items of user reversed are not oldest first: item 6 was created before item 5" in \
            result["error"]["message"]
    assert "error" not in results[10]
    assert client.get("/v1/users/reversed").status_code == 404, "nothing of theirs was applied"
    assert _faces_looked_for(client) == faces_before, "the refused user's image was decoded and scored"


def _faces_looked_for(client) -> float:  # type: ignore[no-untyped-def]
    text = client.get("/metrics").text
    return sum(float(v) for v in re.findall(r'^emodrift_faces_total\{[^}]*\} (\S+)$', text, re.M))


def test_a_backfill_older_than_the_users_last_post_is_refused_and_its_repeats_answered(client) -> None:  # type: ignore[no-untyped-def]
    """Each page of a newest-first query sorted oldest first: within a batch all was in order, across
    batches the history still ran backwards (a re-audit). A backfill goes after what is stored."""
    def page(first_day: int, user: str = "paged") -> list[dict]:
        return [{"user_id": user, "post_id": f"d{day}", "created_at": f"2026-10-{day:02d}T12:00:00Z",
                 "probabilities": HAPPY} for day in range(first_day, first_day + 5)]

    def send(items: list[dict], backfill: bool = True) -> list[dict]:
        response = client.post("/v1/posts/batch", json={"items": items, "backfill": backfill})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    newer = send(page(11))
    assert [r["drift"]["posts_seen"] for r in newer] == [1, 2, 3, 4, 5]
    older = send(page(6) + page(11)[:2])  # the older page, then a retry of two items applied before
    for result in older[:5]:
        assert result["error"]["code"] == "out_of_order", result
        assert "before user paged's last post (2026-10-15T12:00:00.000000Z)" in result["error"]["message"]
        assert result["error"]["details"]["problems"][0]["loc"] == ["body", "items", str(result["index"]), "created_at"]
    assert [r["duplicate"] for r in older[5:]] == [True, True], "a retry of what was applied is still its duplicate"
    assert client.get("/v1/users/paged").json()["drift"]["posts_seen"] == 5
    # live posts are applied as they arrive, late ones too (a phone that uploads a day late)
    assert all("error" not in r for r in send(page(2, "live"), backfill=False))
    (late,) = send([{**page(1, "live")[0], "post_id": "late"}], backfill=False)
    assert "error" not in late and late["drift"]["posts_seen"] == 6
    # a post id repeated in one batch is its own duplicate, not a step back in time
    again = send(page(20, "again")[:2] + page(20, "again")[:1])
    assert [("error" in r, r.get("duplicate")) for r in again] == [(False, False), (False, False), (False, True)]


def test_an_undated_item_is_dated_on_arrival_and_a_repeat_at_another_time_is_no_retry(client) -> None:  # type: ignore[no-untyped-def]
    """A re-audit: [dated, undated, dated later] half-applied a backfill (the undated item took the time it
    arrived) with a message that did not say why; a post id repeated at another time skipped the check."""
    def item(user: str, post: str, day: int | None) -> dict:
        return {"user_id": user, "post_id": post, "probabilities": HAPPY,
                **({} if day is None else {"created_at": f"2026-10-{day:02d}T12:00:00Z"})}

    batch = [item("undated", "d1", 1), item("undated", "u1", None), item("undated", "d2", 2),
             item("repeat", "p1", 1), item("repeat", "p2", 10), item("repeat", "p1", 5)]
    results = client.post("/v1/posts/batch", json={"items": batch, "backfill": True}).json()["results"]
    for result in results:
        assert result["error"]["code"] == "out_of_order", result
    assert "created before item 1 (which has no created_at: it is dated when it arrives)" in results[0]["error"]["message"]
    assert "item 5 was created before item 4" in results[3]["error"]["message"]
    assert client.get("/v1/users/undated").status_code == 404 and client.get("/v1/users/repeat").status_code == 404
