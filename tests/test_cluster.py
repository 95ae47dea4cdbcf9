"""The service unchanged on a real 3-master Redis Cluster: two API processes, the concurrency and
drift tests again, and the same per-user results as on a single Redis."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient

from service import keys
from service.embedded_redis import EmbeddedRedis, free_port
from service.state_store import decode_record
from tests.conftest import start_service
from tests.redis_cluster import RedisCluster, serve_api
from tests.webhook_receiver import Receiver
from tests.constants import HAPPY, SAD

pytestmark = pytest.mark.slow  # left out of `make test-fast` (see README)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    nodes = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    yield nodes
    nodes.stop()


# the webhook tests need a private receiver and fast retries
WEBHOOK_ENV = {"EMODRIFT_WEBHOOK_ALLOW_PRIVATE_URLS": "true", "EMODRIFT_WEBHOOK_RETRY_SCHEDULE": "0.2,0.5",
               "EMODRIFT_WEBHOOK_POLL_INTERVAL_SECONDS": "0.1"}


@pytest.fixture(scope="module")
def two_replicas(cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    procs = [serve_api(cluster.url, tmp_path_factory.mktemp(f"api{i}"), env=WEBHOOK_ENV) for i in range(2)]
    yield [base for _, base in procs]
    for proc, _ in procs:
        proc.send_signal(signal.SIGINT)
    for proc, _ in procs:
        proc.wait(timeout=30)


def _observe(base: str, user: str, post: str, probs: dict[str, float], client: httpx.Client, **extra: str) -> dict:
    response = client.post(f"{base}/v1/users/{user}/observations",
                           json={"post_id": post, "probabilities": probs, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_concurrent_posts_and_retries_on_two_replicas_apply_once(cluster: RedisCluster, two_replicas: list[str]) -> None:
    users = [f"cu{i}" for i in range(4)]
    jobs = [(users[n % 4], f"p{n}", two_replicas[n % 2]) for n in range(200)]
    retries = [(user, post, two_replicas[1 - two_replicas.index(base)]) for user, post, base in jobs[::10]]
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(16) as pool:
        first = list(pool.map(lambda job: _observe(job[2], job[0], job[1], HAPPY, client), jobs))
        again = list(pool.map(lambda job: _observe(job[2], job[0], job[1], HAPPY, client), retries))
    assert not any(r["duplicate"] for r in first)
    assert all(r["duplicate"] for r in again)
    by_post = {(r["user_id"], r["post_id"]): r for r in first}
    assert all({**r, "duplicate": False} == by_post[(r["user_id"], r["post_id"])] for r in again)
    nodes = ClusterClient.from_url(cluster.url)
    try:
        for user in users:
            assert decode_record(nodes.get(keys.state(user))).version == 50
            assert nodes.llen(keys.timeline(user)) == 50
            user_keys = [keys.state(user), keys.timeline(user), keys.seen(user), keys.post_index(user), keys.post(user, "p0"),
                         keys.pending_events(user), keys.user_events(user)]
            assert len({nodes.keyslot(k) for k in user_keys}) == 1  # one slot: one script can touch them all
        # the four users are spread over more than one master
        assert len({nodes.get_node_from_key(keys.state(u)).port for u in users}) > 1
    finally:
        nodes.close()


def _drive(base: str, user: str, client: httpx.Client) -> list[dict]:
    results = []
    for i in range(60):
        # explicit times: the time gap is a model input, and the twin runs must see the same ones
        results.append(_observe(base, user, f"d{i}", HAPPY if i < 30 else SAD, client,
                                created_at=f"2026-11-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"))
    return results


def test_drift_alert_is_written_relayed_and_delivered_on_the_cluster(cluster: RedisCluster, two_replicas: list[str]) -> None:
    receiver = Receiver().start()
    try:
        with httpx.Client(timeout=30) as client:
            created = client.post(f"{two_replicas[0]}/v1/webhooks",
                                  json={"url": receiver.url, "events": ["drift.started"]})
            assert created.status_code == 201, created.text
            receiver.secret = created.json()["secret"]
            results = _drive(two_replicas[1], "cluster-drifter", client)
        alerts = [r["alert"] for r in results if r["alert"]]
        assert [a["type"] for a in alerts] == ["drift.started"] and results.index(
            next(r for r in results if r["alert"])) >= 30
        deadline = time.monotonic() + 20
        while not receiver.successes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.successes() == {alerts[0]["id"]: 1}
        delivered = receiver.attempts(alerts[0]["id"])[-1].json()
        assert delivered["data"]["id"] == alerts[0]["id"] and delivered["type"] == "drift.started"
    finally:
        receiver.stop()


def test_alerts_are_listed_judged_and_erased_on_the_cluster(two_replicas: list[str]) -> None:
    """The alert scripts each touch one slot: a user's (the record) or the listing's own."""
    users = ["lister-a", "lister-b", "lister-c"]  # spread over the masters: listing reads several slots
    with httpx.Client(timeout=30) as client:
        raised = {user: next(r["alert"] for r in _drive(two_replicas[i % 2], user, client) if r["alert"])
                  for i, user in enumerate(users)}
        listed = client.get(f"{two_replicas[0]}/v1/alerts", params={"limit": 200}).json()
        assert {a["id"] for a in listed["alerts"]} >= {a["id"] for a in raised.values()}
        judged = client.post(f"{two_replicas[1]}/v1/alerts/{raised['lister-b']['id']}/resolve",
                             json={"verdict": "confirmed"})
        assert judged.status_code == 200 and judged.json()["status"] == "resolved", judged.text
        resolved = client.get(f"{two_replicas[0]}/v1/alerts", params={"status": "resolved"}).json()["alerts"]
        assert raised["lister-b"]["id"] in [a["id"] for a in resolved]
        assert client.delete(f"{two_replicas[0]}/v1/users/lister-c").status_code == 204
        assert client.get(f"{two_replicas[1]}/v1/alerts/{raised['lister-c']['id']}").status_code == 404
        left = {a["id"] for a in client.get(f"{two_replicas[1]}/v1/alerts", params={"limit": 200}).json()["alerts"]}
        assert raised["lister-c"]["id"] not in left and raised["lister-a"]["id"] in left


def test_same_results_as_on_a_single_redis(cluster: RedisCluster, two_replicas: list[str], tmp_path: Path) -> None:
    with httpx.Client(timeout=30) as client:
        on_cluster = _drive(two_replicas[0], "twin", client)
    with EmbeddedRedis(tmp_path, port=free_port()) as single:
        svc = start_service(redis_url=single.url)
        try:
            with svc.client() as client:
                on_single = _drive(svc.url, "twin", client)
            single_state = decode_record(redis.Redis.from_url(single.url).get(keys.state("twin")))
        finally:
            svc.stop()
    strip = lambda r: {k: v for k, v in r.items() if k != "alert"}  # noqa: E731 - alert ids are random
    assert [strip(r) for r in on_cluster] == [strip(r) for r in on_single]
    nodes = ClusterClient.from_url(cluster.url)
    try:
        cluster_state = decode_record(nodes.get(keys.state("twin")))
    finally:
        nodes.close()
    assert cluster_state.h.tobytes() == single_state.h.tobytes() and cluster_state.c.tobytes() == single_state.c.tobytes()
    assert cluster_state.version == single_state.version == 60


def test_a_cluster_without_the_cluster_setting_says_which_setting(cluster: RedisCluster) -> None:
    """A plain client against a Cluster node gets MOVED for most users: it read as "the Redis Cluster
    slot is still moving", pointing on-call at a resharding rather than at EMODRIFT_REDIS_CLUSTER."""
    running = start_service(redis_url=cluster.url)  # each refusal retried for the 3 s a slot move may take
    try:
        with running.client() as http:
            answers = [http.post(f"/v1/users/u{i}/observations", json={"post_id": "p", "probabilities": HAPPY})
                       for i in range(4)]
            ready = http.get("/readyz")
    finally:
        running.stop()
    refused = [a.json()["error"]["message"] for a in answers if a.status_code == 503]
    assert refused and all("set EMODRIFT_REDIS_CLUSTER=true" in message for message in refused), refused
    # and the replica is not ready (it was: PING answers on a Cluster node), saying why
    assert ready.status_code == 503 and "set EMODRIFT_REDIS_CLUSTER=true" in ready.json()["error"]["message"], ready.text


def test_a_slot_left_half_moved_to_a_new_master(tmp_path: Path) -> None:
    """A rebalance that stopped part-way (an SRE audit: "CLUSTERDOWN" three seconds after add-node) left a
    slot MIGRATING to a master added after the replica started. The node of its keys answers ASK to a node
    the client never met (it learns nodes from CLUSTER SLOTS, where a master without slots is absent):
    redis-py fell into an AttributeError, and even reads got 503 for as long as the slot stayed open.
    Reads now follow the ASK; a user's write (one script over its keys) cannot run until the slot is
    closed, which Redis says with TRYAGAIN: the 503 names the command that closes it, and then it runs."""
    from redis.crc import key_slot

    own = RedisCluster(tmp_path / "cluster").start()
    running = start_service(redis_url=own.url, redis_cluster=True)
    try:
        with running.client() as http:
            assert http.post("/v1/users/warm/observations", json={"post_id": "p", "probabilities": HAPPY}).status_code == 200
            added = own.add_master()
            slot = key_slot(b"asked")
            source = own.slot_owner(slot)
            ids = {}
            for port in (source, added):
                with redis.Redis(host="127.0.0.1", port=port) as node:
                    ids[port] = node.execute_command("CLUSTER MYID")
            with redis.Redis(host="127.0.0.1", port=added) as target:  # what a reshard does first
                target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[source])
            with redis.Redis(host="127.0.0.1", port=source) as node:
                node.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[added])
            listed = http.get("/v1/alerts", params={"user_id": "asked"})  # a read outside the retried path, first
            assert listed.status_code == 200 and listed.json()["alerts"] == [], listed.text
            read = http.get("/v1/users/asked")
            assert read.status_code == 404 and read.json()["error"]["code"] == "user_not_found", read.text
            write = http.post("/v1/users/asked/observations", json={"post_id": "p", "probabilities": HAPPY})
            assert write.status_code == 503 and "redis-cli --cluster fix" in write.json()["error"]["message"], write.text
            own.cli("--cluster", "fix", f"127.0.0.1:{own.ports[0]}", "--cluster-yes")
            write = http.post("/v1/users/asked/observations", json={"post_id": "p", "probabilities": HAPPY})
            assert write.status_code == 200, write.text
    finally:
        running.stop()
        own.stop()
