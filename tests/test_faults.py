"""Faults: Redis going away under a running service, the API process SIGKILLed under load,
graceful shutdown on SIGTERM / Ctrl-C, and overload.

Everything is real: redis-server processes, `python -m service.cli serve` processes, 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from service import keys, timeline_codec
from service.state_store import split_record
from service.embedded_redis import EmbeddedRedis, free_port
from tests import image_fixtures as img
from tests.conftest import RunningService, read_state, recorded_posts, start_service
from tests.test_concurrency import ApiProcess, probabilities
from tests.constants import HAPPY

pytestmark = pytest.mark.slow  # left out of `make test-fast` (see README)


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def expect_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "store_unavailable", response.text
    assert int(response.headers["retry-after"]) >= 1
    assert elapsed < 2.0, f"took {elapsed:.2f} s: not failing fast"


def contents(r: redis.Redis, pattern: str) -> dict[bytes, Any]:
    """What the keys hold, by value (DUMP's bytes change when the AOF is replayed)."""
    read = {b"hash": r.hgetall, b"string": r.get, b"list": lambda k: r.lrange(k, 0, -1),
            b"zset": lambda k: r.zrange(k, 0, -1, withscores=True)}
    return {key: read[r.type(key)](key) for key in r.keys(pattern)}


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


# --- Redis stops and comes back -----------------------------------------------------------------

def exported_ready(http: httpx.Client) -> float:
    """``emodrift_ready`` as a scrape reads it."""
    (value,) = re.findall(r"^emodrift_ready (\S+)$", http.get("/metrics").text, re.M)
    return float(value)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


REVIEWER = "reviewer-key-for-the-faults-test"


@pytest.fixture
def service_on_own_redis(own_redis: EmbeddedRedis) -> Iterator[RunningService]:
    running = start_service(redis_url=own_redis.url, redis_timeout_seconds=0.5)
    yield running
    running.stop()


def test_each_5xx_is_logged_with_its_code_and_route_and_a_4xx_is_not(
        own_redis: EmbeddedRedis, service_on_own_redis: RunningService, caplog: pytest.LogCaptureFixture) -> None:
    # the runbook (EmodriftHighErrorRate) says to read "the error codes in the logs": none was logged
    caplog.set_level(logging.WARNING, logger="emodrift.errors")
    http = service_on_own_redis.client()
    assert http.get("/v1/users/nobody").status_code == 404
    with_pages = start_service(redis_url=own_redis.url, redis_timeout_seconds=0.5, reviewer_api_keys=[REVIEWER])
    person = with_pages.client()
    assert person.post("/ui/sign-in", data={"api_key": REVIEWER, "next": "/ui"}).status_code == 303
    own_redis.stop()
    assert http.post("/v1/users/someone/observations", json={"post_id": "p", "probabilities": HAPPY}).status_code == 503
    assert http.get("/readyz").status_code == 503
    # a batch of which nothing could be applied answers as its items' refusal, logged once, not per item
    items = [{"user_id": f"b{i}", "post_id": "p", "probabilities": HAPPY} for i in range(3)]
    batch = http.post("/v1/posts/batch", json={"items": items})
    assert batch.status_code == 503 and batch.json()["error"]["code"] == "store_unavailable", batch.text
    # a person's page answers the same 5xx as a page (service/ui/error_pages.py), logged all the same
    try:
        listing = person.get("/ui")
    finally:
        with_pages.stop()
    assert listing.status_code == 503 and listing.headers["content-type"].startswith("text/html")
    lines = [r for r in caplog.records if r.name == "emodrift.errors"]
    assert [(r.levelname, r.status, r.code, r.route) for r in lines] == [  # type: ignore[attr-defined]
        ("WARNING", 503, "store_unavailable", "/v1/users/{user_id}/observations"),
        ("WARNING", 503, "not_ready", "/readyz"),
        ("WARNING", 503, "store_unavailable", "/v1/posts/batch"),
        ("WARNING", 503, "store_unavailable", "/ui")], [r.getMessage() for r in lines]
    assert "someone" not in lines[0].getMessage() and "Redis unreachable" in lines[0].getMessage()


def test_a_bug_answers_the_error_envelope_or_a_page_and_is_logged(
        own_redis: EmbeddedRedis, caplog: pytest.LogCaptureFixture) -> None:
    """An exception no handler knows (a bug) was answered by Starlette in plain text: outside the error
    contract (docs/errors.md's root, 500 ``internal``) and, under /ui, without the page's headers. No real
    request raises one, so this is a fake fault: a route that does, added to the running app."""
    caplog.set_level(logging.WARNING)
    running = start_service(redis_url=own_redis.url, reviewer_api_keys=[REVIEWER])

    async def bug() -> None:
        raise RuntimeError("secret detail")

    try:
        for path in ("/v1/test-bug", "/ui/test-bug"):
            running.server.config.app.add_api_route(path, bug)
        answers = []
        for path in ("/v1/test-bug", "/ui/test-bug"):  # a client each: uvicorn closes a raising request's connection
            with running.client() as http:
                answers.append(http.get(path))
        api, page = answers
    finally:
        running.stop()
    assert api.status_code == 500 and api.json()["error"]["code"] == "internal", api.text
    assert "secret detail" not in api.text and "RuntimeError" in api.json()["error"]["message"]
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY" and "Something went wrong" in page.text
    logged = [(r.status, r.code, r.route) for r in caplog.records if r.name == "emodrift.errors"]  # type: ignore[attr-defined]
    assert logged == [(500, "internal", "/v1/test-bug"), (500, "internal", "/ui/test-bug")]
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)  # the traceback


def test_the_cluster_setting_against_a_plain_redis_says_so(own_redis: EmbeddedRedis) -> None:
    """EMODRIFT_REDIS_CLUSTER=true against a Redis that is no Cluster: /readyz, /metrics and every post
    answered 500 internal, so emodrift_ready was never exported and EmodriftNotReady could not fire."""
    running = start_service(redis_url=own_redis.url, redis_cluster=True)
    try:
        with running.client() as http:
            ready, scrape = http.get("/readyz"), http.get("/metrics")
            posted = http.post("/v1/users/u/observations", json={"post_id": "p", "probabilities": HAPPY})
    finally:
        running.stop()
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready", ready.text
    assert "EMODRIFT_REDIS_CLUSTER is true" in ready.json()["error"]["message"], ready.text
    assert scrape.status_code == 200 and "emodrift_ready 0.0" in scrape.text
    assert posted.status_code == 503 and "EMODRIFT_REDIS_CLUSTER" in posted.json()["error"]["message"], posted.text


def test_redis_refusing_writes_is_a_503_that_says_why(own_redis: EmbeddedRedis,
                                                      service_on_own_redis: RunningService) -> None:
    """Redis's memory full (maxmemory, noeviction): every post was a 500 `internal`, which the runbook
    reads as a bug to roll back (an on-call audit). It is a 503 naming the cause, counted by reason."""
    r = redis.Redis.from_url(own_redis.url)
    with service_on_own_redis.client() as http:
        assert http.post("/v1/users/u/observations", json={"post_id": "p0", "probabilities": HAPPY}).status_code == 200
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", "1mb")
        try:
            for i in range(10_000):  # fill it: the next write is refused
                r.set(f"filler:{i}", b"x" * 1000)
        except redis.exceptions.OutOfMemoryError:
            pass
        try:
            posted, elapsed = timed(lambda: http.post("/v1/users/u/observations",
                                                      json={"post_id": "p1", "probabilities": HAPPY}))
            expect_unavailable(posted, elapsed)
            assert "memory is full" in posted.json()["error"]["message"], posted.text
            assert 'emodrift_redis_write_refusals_total{reason="out_of_memory"} 1.0' in http.get("/metrics").text
        finally:
            r.config_set("maxmemory", "0")
        assert http.post("/v1/users/u/observations", json={"post_id": "p1", "probabilities": HAPPY}).status_code == 200
    r.close()


def test_redis_down_fails_fast_writes_nothing_and_recovers(
        own_redis: EmbeddedRedis, service_on_own_redis: RunningService) -> None:
    r = redis.Redis.from_url(own_redis.url)
    http = service_on_own_redis.client()
    for i in range(5):
        assert http.post("/v1/users/u/observations", json={"post_id": f"p{i}", "probabilities": HAPPY}).status_code == 200
    before = contents(r, "ed:{u}:*")
    r.close()

    own_redis.stop()  # SIGTERM: AOF flushed, port closed
    face = img.face_jpeg(size=256)
    calls = {
        "observation": lambda: http.post("/v1/users/u/observations", json={"post_id": "down-1", "probabilities": HAPPY}),
        "image": lambda: http.post("/v1/users/u/posts", files={"image": ("a.jpg", face, "image/jpeg")},
                                   data={"post_id": "down-2"}),
        "user": lambda: http.get("/v1/users/u"),
        "timeline": lambda: http.get("/v1/users/u/timeline"),
    }
    for name, call in calls.items():
        expect_unavailable(*timed(call))
    batch, elapsed = timed(lambda: http.post("/v1/posts/batch", json={"items": [
        {"user_id": "u", "post_id": "down-3", "probabilities": HAPPY}]}))
    expect_unavailable(batch, elapsed)  # nothing applied: the batch answers as its refusal (503, Retry-After)
    ready = http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["error"]["details"]["checks"]["redis"] is False
    assert "retry-after" in ready.headers
    assert http.get("/healthz").status_code == 200  # an external Redis away is no reason to restart the pod
    # no pod is ready, so no request is counted: the gauge is what pages (EmodriftNotReady)
    assert exported_ready(http) == 0.0

    own_redis.start()  # same port, same data dir: the AOF is replayed
    wait_for(lambda: http.get("/readyz").status_code == 200, 10, "readiness after Redis came back")
    assert exported_ready(http) == 1.0
    r = redis.Redis.from_url(own_redis.url)
    assert contents(r, "ed:{u}:*") == before, "partial state from the failed requests"
    response = http.post("/v1/users/u/observations", json={"post_id": "down-1", "probabilities": HAPPY})
    assert response.status_code == 200 and response.json()["duplicate"] is False  # it was never recorded
    assert response.json()["drift"]["posts_seen"] == 6

    # a hung Redis (SIGSTOP: connections open, no answers) is caught by the socket timeout
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        expect_unavailable(*timed(lambda: http.post(
            "/v1/users/u/observations", json={"post_id": "hung-1", "probabilities": HAPPY})))
        ready, elapsed = timed(lambda: http.get("/readyz"))
        assert ready.status_code == 503 and elapsed < 2.0
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    wait_for(lambda: http.get("/readyz").status_code == 200, 10, "readiness after SIGCONT")
    # the refused write may still have reached Redis (sent before the timeout): a retry of the same
    # post id is then a duplicate; either way it is applied exactly once
    response = http.post("/v1/users/u/observations", json={"post_id": "hung-1", "probabilities": HAPPY})
    assert response.status_code == 200 and response.json()["drift"]["posts_seen"] == 7
    assert read_state(r, "u").version == 7
    assert len(r.lrange(keys.timeline("u"), 0, -1)) == 7
    r.close()
    http.close()


def test_a_scrape_answers_while_redis_hangs_and_the_next_says_not_ready(own_redis: EmbeddedRedis) -> None:
    """A hung Redis answers nothing until the client's timeout. A scrape that waited for it would fail at a
    scrape timeout under that timeout (EmodriftDown for what is EmodriftNotReady): it answers at once, and
    the readings it started land for the next scrape."""
    running = start_service(redis_url=own_redis.url, redis_timeout_seconds=3.0)
    http = running.client()
    try:
        assert exported_ready(http) == 1.0
        assert own_redis.process is not None
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            first, elapsed = timed(lambda: http.get("/metrics"))
            assert first.status_code == 200 and elapsed < 2.0, f"the scrape waited {elapsed:.2f} s for a hung Redis"
            # the first scrape's readings time out after 3 s: not ready from then on, while Redis still hangs
            wait_for(lambda: exported_ready(http) == 0.0, 8, "emodrift_ready 0 while Redis hangs")
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        wait_for(lambda: exported_ready(http) == 1.0, 10, "emodrift_ready 1 after SIGCONT")
    finally:
        http.close()
        running.stop()


# --- SIGKILL under load, clients retry ------------------------------------------------------------

USERS = ["k0", "k1", "k2"]
POSTS_PER_USER = 40


def kill_posts(user: str) -> list[dict[str, Any]]:
    """The user's posts, in the order that user's client sends them (observations: deterministic CPU math)."""
    seed = USERS.index(user) * 1000
    return [{"post_id": f"{user}-{n}", "created_at": f"2026-11-0{1 + n // 24}T{n % 24:02d}:{(7 * n) % 60:02d}:00Z",
             "probabilities": probabilities(seed + n)} for n in range(POSTS_PER_USER)]


def canonical(r: redis.Redis, user: str) -> dict[str, Any]:
    """A user's state and timeline, without what differs between two runs by design (event ids, clocks)."""
    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items() if k not in ("id", "emitted_at")}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    v, h, c, meta = split_record(r.get(keys.state(user)))
    return {"v": v, "h": h, "c": c, "meta": scrub(json.loads(meta)),
            "timeline": [scrub(timeline_codec.decode(item, user)) for item in r.lrange(keys.timeline(user), 0, -1)]}


def test_sigkill_under_load_then_retries_equal_a_clean_run(
        redis_server: EmbeddedRedis, redis_client: redis.Redis, tmp_path: Path) -> None:
    api = ApiProcess(tmp_path, "killed", redis_server.url).start().wait_ready()
    applied = [0]
    failures = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def client(user: str) -> list[dict[str, Any]]:
        """One client per user: each post is retried (same id) until it gets a 200, then the next."""
        answers = []
        with httpx.Client(base_url=api.url, timeout=5) as http:
            for body in kill_posts(user):
                deadline = time.monotonic() + 60
                while True:
                    assert not stop.is_set() and time.monotonic() < deadline, "gave up"
                    try:
                        response = http.post(f"/v1/users/{user}/observations", json=body)
                        if response.status_code == 200:
                            break
                        assert response.status_code in (502, 503), response.text
                    except httpx.TransportError:
                        pass
                    with lock:
                        failures[0] += 1
                    time.sleep(0.05)
                answers.append(response.json())
                with lock:
                    applied[0] += 1
        return answers

    try:
        with ThreadPoolExecutor(len(USERS)) as pool:
            futures = [pool.submit(client, user) for user in USERS]
            wait_for(lambda: applied[0] >= len(USERS) * POSTS_PER_USER // 3, 30, "a third of the posts")
            assert api.proc is not None
            api.proc.kill()  # SIGKILL: no shutdown, in-flight requests and responses are lost
            api.proc.wait()
            killed_at = applied[0]
            api.start().wait_ready()
            answers = [f.result(timeout=60) for f in futures]
    finally:
        stop.set()
        api.stop()
    assert killed_at < len(USERS) * POSTS_PER_USER, "the kill came after the load"
    assert failures[0] > 0, "no request was cut off by the kill"

    # the same posts, same per-user order, against a fresh database and an in-process service
    clean_url = redis_server.url.rsplit("/", 1)[0] + "/1"
    clean = start_service(redis_url=clean_url)
    try:
        with clean.client() as http, ThreadPoolExecutor(len(USERS)) as pool:
            def replay(user: str) -> None:
                for body in kill_posts(user):
                    assert http.post(f"/v1/users/{user}/observations", json=body).status_code == 200
            list(pool.map(replay, USERS))
    finally:
        clean.stop()

    clean_db = redis.Redis.from_url(clean_url)
    for user, user_answers in zip(USERS, answers):
        assert [a["drift"]["posts_seen"] for a in user_answers] == list(range(1, POSTS_PER_USER + 1))
        got, want = canonical(redis_client, user), canonical(clean_db, user)
        assert got["v"] == want["v"] == POSTS_PER_USER
        assert got["meta"]["posts_seen"] == POSTS_PER_USER
        assert got == want, f"{user}: state after SIGKILL and retries differs from a clean run"
    clean_db.close()


# --- graceful shutdown ----------------------------------------------------------------------------

def _redis_pid(data_dir: Path) -> int:
    match = re.search(r"pid=(\d+)", (data_dir / "redis.log").read_text())
    assert match, "no pid in the embedded redis log"
    return int(match.group(1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_graceful_shutdown_finishes_in_flight_and_stops_embedded_redis(how: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # Ctrl-C in a terminal signals the whole process group: the workers and the embedded redis too
    api = ApiProcess(tmp_path, "graceful", None, workers=2 if how == "Ctrl-C" else 1,
                     env={"EMODRIFT_DATA_DIR": str(data_dir)}, new_session=True).start().wait_ready()
    redis_pid = _redis_pid(data_dir)
    faces = [base64.b64encode(face).decode() for face in img.happy_faces()[:6]]
    per_batch = 40  # items per batch: 240 images keep the service busy for a second or more after all six are sent
    batches = [{"items": [{"user_id": f"g{b}", "post_id": f"g{b}-{i}", "image_base64": faces[i % len(faces)]}
                          for i in range(per_batch)]} for b in range(6)]

    sent = [threading.Event() for _ in batches]

    def post(index: int) -> httpx.Response:
        def body() -> Iterator[bytes]:  # marks the request as on the wire once its last byte is written
            yield json.dumps(batches[index]).encode()
            sent[index].set()
        return httpx.post(f"{api.url}/v1/posts/batch", content=body(), timeout=60,
                          headers={"content-type": "application/json"})

    def images_scored() -> float:
        text = httpx.get(f"{api.url}/metrics", timeout=5).text
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("emodrift_faces_total{"))

    try:
        with ThreadPoolExecutor(len(batches)) as pool:
            futures = [pool.submit(post, i) for i in range(len(batches))]
            # in flight: every request has been sent (one still connecting when the signal came would be
            # refused: not what this test is about), scoring has begun, and it is far from done
            wait_for(lambda: all(e.is_set() for e in sent) and images_scored() > 0, 20,
                     "the batches to be in flight", interval=0.01)
            assert api.proc is not None
            assert not all(f.done() for f in futures), "nothing was in flight when the signal came"
            if how == "SIGTERM":
                api.proc.send_signal(signal.SIGTERM)
            else:
                os.killpg(api.proc.pid, signal.SIGINT)
            responses = [f.result(timeout=60) for f in futures]
        code = api.proc.wait(timeout=30)
    finally:
        log = api.log()
        api.stop(signal.SIGKILL)
    for response in responses:
        assert response.status_code == 200, response.text
        assert all("error" not in item for item in response.json()["results"]), response.text
    assert code == 0, log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api.url}/healthz", timeout=2)
    assert not _alive(redis_pid), "the embedded redis-server outlived `emodrift serve`"
    assert not (data_dir / "redis.sock").exists()
    assert "ready to exit, bye bye" in (data_dir / "redis.log").read_text(), "redis did not shut down cleanly"

    # everything that was answered 200 was in the AOF: a new `serve` on the same data dir has it
    again = ApiProcess(tmp_path, "again", None, env={"EMODRIFT_DATA_DIR": str(data_dir)}).start().wait_ready()
    try:
        for b in range(len(batches)):
            assert httpx.get(f"{again.url}/v1/users/g{b}").json()["drift"]["posts_seen"] == per_batch
    finally:
        again.stop()


# --- overload ------------------------------------------------------------------------------------

def test_overload_is_refused_with_429_and_writes_nothing(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    running = start_service(redis_url=redis_server.url, max_queue=2, decode_threads=1)
    face = img.face_jpeg()
    try:
        with running.client(limits=httpx.Limits(max_connections=64)) as http:
            def post(i: int) -> tuple[int, httpx.Response]:
                return i, http.post(f"/v1/users/busy{i % 2}/posts", files={"image": ("a.jpg", face, "image/jpeg")},
                                    data={"post_id": f"b{i}"})

            with ThreadPoolExecutor(32) as pool:
                results = list(pool.map(post, range(48)))
            refused = [i for i, r in results if r.status_code == 429]
            accepted = [i for i, r in results if r.status_code == 200]
            assert len(refused) + len(accepted) == len(results), [r.text for _, r in results if r.status_code not in (200, 429)]
            assert refused and accepted
            for i, response in results:
                if response.status_code == 429:
                    assert response.json()["error"]["code"] == "overloaded"
                    assert int(response.headers["retry-after"]) >= 1
            for user in ("busy0", "busy1"):
                mine = [i for i in accepted if i % 2 == int(user[-1])]
                assert getattr(read_state(redis_client, user), "version", 0) == len(mine)
            assert not any(f"b{i}" in recorded_posts(redis_client, f"busy{i % 2}") for i in refused)

            # refused posts were never recorded: retried when the load has passed, they apply once
            for i in refused:
                _, response = post(i)
                assert response.status_code == 200 and response.json()["duplicate"] is False
            for user in ("busy0", "busy1"):
                assert read_state(redis_client, user).version == 24
    finally:
        running.stop()
