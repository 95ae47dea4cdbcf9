"""``python -m benchmarks.scale --users N --posts M``: what a user costs in Redis, and how fast users fill it.

Starts a fresh redis-server (AOF on, as ``emodrift serve`` runs it) and ``emodrift serve`` on
127.0.0.1, then feeds N users M posts each through ``POST /v1/posts/batch`` (JSON observations, so
the figures are about storage, not the CNN): round by round, each batch holding ``--batch`` posts of
as many different users, ``--connections`` batches in flight. Every post id is new and every post is
inside the idempotency window (the run takes minutes; the window is days), the worst case for memory.

Reported: Redis bytes per user (``INFO memory`` used_memory after the run minus before it, over N;
the AOF buffer is let drain first), with one user's keys by ``MEMORY USAGE``; posts/s; p50 / p99 of a
batch request; the CPU the service and Redis spent per post while feeding (``/proc``, ``INFO cpu``: on
a machine shared with other work a steadier figure than posts/s); and the projected Redis size for
10^6 and 10^7 such users (bytes per user x users: per-user keys are independent, so memory is linear
in users). ``--json PATH`` writes the figures.

``--code DIR`` serves another checkout's code (e.g. ``git archive main | tar -x -C DIR``) with this
benchmark; ``--against DIR --rounds R`` runs this checkout and DIR in turn, R times each, in one run,
and reports the ratios (docs/performance.md: how a speed-up is measured on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import redis

from benchmarks.load import ROOT, Server
from service import json_codec
from service.embedded_redis import EmbeddedRedis, free_port
from service.emotions import LABELS

POOL = 256  # distinct probability vectors: building bodies must not cost the server its CPU


def user_id(n: int) -> str:
    return f"user{n:08d}"


def post_id(user: int, n: int) -> str:
    """19 decimal digits, as a platform's 64-bit post ids are written."""
    return f"{(user * 1_000_003 + n * 7_919) % 10**19 + 10**18:019d}"


def probability_pool(seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(POOL):
        p = rng.dirichlet(np.ones(len(LABELS)) * 2)
        out.append({label: round(float(v), 6) for label, v in zip(LABELS, p)})
    return out


def batches(users: int, posts: int, size: int) -> Iterator[tuple[bytes, int]]:
    """(body, items): round r gives every user their r-th post, ``size`` users per batch."""
    pool = probability_pool()
    for r in range(posts):
        for start in range(0, users, size):
            items = [{"user_id": user_id(u), "post_id": post_id(u, r), "probabilities": pool[(u * 31 + r) % POOL],
                      "created_at": f"2026-11-{1 + r // 24 % 28:02d}T{r % 24:02d}:{u % 60:02d}:00Z"}
                     for u in range(start, min(start + size, users))]
            yield json_codec.dumps({"items": items}), len(items)


async def feed(base: str, users: int, posts: int, size: int, connections: int) -> dict[str, object]:
    work = batches(users, posts, size)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        for body, count in work:  # one shared generator: each batch goes to one worker
            started = time.perf_counter()
            async with session.post(f"{base}/v1/posts/batch", data=body,
                                    headers={"content-type": "application/json"}) as response:
                answer = await response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                errors[str(response.status)] = errors.get(str(response.status), 0) + count
                continue
            for item in json.loads(answer)["results"]:
                if "error" in item:
                    errors[item["error"]["code"]] = errors.get(item["error"]["code"], 0) + 1
                elif item["duplicate"]:
                    errors["duplicate"] = errors.get("duplicate", 0) + 1
            sent += count

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=connections)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1e3
    return {"posts": sent, "seconds": round(elapsed, 1), "posts_per_second": round(sent / elapsed, 1),
            "batch_p50_ms": round(float(np.percentile(ms, 50)), 1), "batch_p99_ms": round(float(np.percentile(ms, 99)), 1),
            "errors": errors}


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of ``pid`` and its descendants (``emodrift serve --workers N``'s
    workers); None without /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    try:
        while todo:
            current = todo.pop()
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return None
    return total


def redis_cpu(db: redis.Redis) -> float:
    info = db.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def per_post_ms(seconds: float | None, posts: int) -> float | None:
    return None if seconds is None or not posts else round(seconds / posts * 1e3, 3)


def used_memory(db: redis.Redis) -> int:
    """used_memory once the AOF buffer has drained (it is flushed every second)."""
    deadline = time.monotonic() + 10
    while True:
        info = db.info("memory")
        if int(info.get("mem_aof_buffer", 0)) == 0 or time.monotonic() > deadline:
            return int(info["used_memory"])
        time.sleep(0.2)


def one_user(db: redis.Redis, user: str) -> dict[str, int]:
    """MEMORY USAGE of each of the user's keys (the key's own overhead included)."""
    return {key.decode().rsplit(":", 1)[1]: int(db.memory_usage(key, samples=0) or 0)
            for key in sorted(db.scan_iter(match=f"ed:[{{]{user}[}}]:*", count=1000))}


def run(args: argparse.Namespace) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="emodrift-scale-"))
    red = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    db = redis.Redis.from_url(red.url)
    try:
        before = used_memory(db)  # with no client but this one: clients' buffers are memory too
        port = free_port()
        env = {"EMODRIFT_REDIS_URL": red.url, "EMODRIFT_DATA_DIR": str(tmp / "data"), "EMODRIFT_PROVIDER": "cpu"}
        code = args.code.resolve() if args.code else ROOT
        if args.code:  # its `service` package, not this one's (the virtualenv's editable install)
            env["PYTHONPATH"] = str(code)
        server = Server([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers",
                         str(args.workers), "--log-level", "warning"], env, port, "/readyz", cwd=code).wait()
        try:
            cpu_before, redis_before = process_cpu(server.process.pid), redis_cpu(db)  # start-up not counted
            fed = asyncio.run(feed(server.base, args.users, args.posts, args.batch, args.connections))
            cpu_after, redis_after = process_cpu(server.process.pid), redis_cpu(db)
        finally:
            server.stop()
        posts = int(fed["posts"])  # type: ignore[call-overload]
        fed["server_cpu_ms_per_post"] = per_post_ms(
            None if cpu_before is None or cpu_after is None else cpu_after - cpu_before, posts)
        fed["redis_cpu_ms_per_post"] = per_post_ms(redis_after - redis_before, posts)
        after = used_memory(db)
        users_stored = sum(1 for _ in db.scan_iter(match="ed:{*}:state", count=10_000))
        per_user = (after - before) / args.users
        return {"users": args.users, "posts_per_user": args.posts, "users_stored": users_stored, **fed,
                "redis_bytes_per_user": round(per_user), "one_user_keys": one_user(db, user_id(0)),
                "projected_gib": {"1e6": round(per_user * 1e6 / 2**30, 2), "1e7": round(per_user * 1e7 / 2**30, 1)},
                "redis_version": db.info("server")["redis_version"]}
    finally:
        db.close()
        red.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(r: dict[str, object]) -> str:
    gib = r["projected_gib"]
    assert isinstance(gib, dict)
    return "\n".join([
        f"{r['users']} users x {r['posts_per_user']} posts ({r['posts']} posts acknowledged, "
        f"{r['users_stored']} users in Redis); not applied: {r['errors'] or 'none'}",
        f"Redis bytes per user: {r['redis_bytes_per_user']} (INFO used_memory delta / users); one user's keys "
        f"(MEMORY USAGE): {r['one_user_keys']}",
        f"posts/s: {r['posts_per_second']} over {r['seconds']} s; batch request p50 {r['batch_p50_ms']} ms, "
        f"p99 {r['batch_p99_ms']} ms; CPU per post: service {r.get('server_cpu_ms_per_post')} ms, "
        f"Redis {r.get('redis_cpu_ms_per_post')} ms",
        f"projected Redis size: 10^6 users {gib['1e6']} GiB, 10^7 users {gib['1e7']} GiB",
    ])


def compare(args: argparse.Namespace) -> int:
    """This checkout against ``args.against``, alternating (A B A B ...), so both meet the same load of
    a shared machine; the ratios of the medians are the figure, not either absolute."""
    runs: dict[str, list[dict[str, object]]] = {"this": [], "other": []}
    for _ in range(args.rounds):
        for name, code in (("this", None), ("other", args.against)):
            result = run(argparse.Namespace(**{**vars(args), "code": code}))
            print(f"[{name}] {report(result)}", flush=True)
            runs[name].append(result)

    def median(name: str, key: str) -> float:
        return float(np.median([float(r[key]) for r in runs[name]]))  # type: ignore[arg-type]

    summary: dict[str, object] = {"users": args.users, "posts_per_user": args.posts, "rounds": args.rounds,
                                  "other": str(args.against)}
    for key in ("posts_per_second", "server_cpu_ms_per_post", "redis_cpu_ms_per_post", "batch_p99_ms"):
        for name in runs:
            summary[f"{key}_{name}"] = median(name, key)
    throughput = round(median("this", "posts_per_second") / median("other", "posts_per_second"), 2)
    cpu = round(median("other", "server_cpu_ms_per_post") / median("this", "server_cpu_ms_per_post"), 2)
    summary.update({"throughput_ratio": throughput, "server_cpu_ratio": cpu, "runs": runs})
    print(f"this checkout vs {args.against}: posts/s x{throughput}; service CPU per post "
          f"{median('other', 'server_cpu_ms_per_post')} -> {median('this', 'server_cpu_ms_per_post')} ms "
          f"(x{cpu} less)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all(not r["errors"] for rs in runs.values() for r in rs) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=50, help="posts per user")
    parser.add_argument("--batch", type=int, default=256, help="posts per batch request (<= EMODRIFT_MAX_BATCH_ITEMS)")
    parser.add_argument("--connections", type=int, default=2, help="batch requests in flight")
    parser.add_argument("--workers", type=int, default=1, help="service worker processes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--code", type=Path, help="serve this checkout's code instead of this one's")
    parser.add_argument("--against", type=Path, help="compare with this checkout: runs both in turn, --rounds each")
    parser.add_argument("--rounds", type=int, default=2, help="with --against: runs of each")
    args = parser.parse_args(argv)
    if args.against:
        return compare(args)
    result = run(args)
    print(report(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if not result["errors"] and result["users_stored"] == args.users else 1


if __name__ == "__main__":
    raise SystemExit(main())
