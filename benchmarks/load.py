"""``python -m benchmarks.load``: the service under load on 127.0.0.1, against the naive baseline.

One command, bounded in time (its duration: docs/performance.md), loopback only. It starts a real
redis-server (AOF on, as ``emodrift serve`` runs it) and, in turn, ``emodrift serve`` and the naive
baseline (benchmarks/naive.py), each in its own process, and drives them with keep-alive connections
(request bodies built before the clock starts): the saturation phases with wrk when it is on PATH
(benchmarks/wrk_driver.py; a C client, so the 2 cores go to the server rather than to the client;
``--client aiohttp`` to compare), the open-loop phases with a pool of raw keep-alive sockets on uvloop
(``open_loop``: far less CPU per request than aiohttp, so the client does not make the tail it measures).

Posts come from benchmarks/post_set.py: 1080x1080 JPEGs with a face for the headline, and a mix of
1080 and 4000x3000 JPEGs, PNGs and no-face posts. 1000 users, Zipf-distributed (s = 1.1): a few
users post a lot, as on a real platform. Every post id is new. Phases, each ``--seconds`` long:

- saturation: ``--connections`` clients in a closed loop → sustained posts/s;
- open loop at 50% and 90% of that rate (arrivals on a fixed schedule; latency counted from the
  scheduled time, so a stall is not hidden) → p50 / p99;
- the same for the observations endpoint (probabilities in, no image);
- a short MONITOR sample → Redis round trips per post (commands from clients; script-internal
  calls are not round trips).

``--shadow N`` runs only the comparison of docs/shadow.md: CPU per observation with a shadow temporal
model of version N against without one, in alternating phases of one run.

CPU per post is the server's user+system time (all its threads) plus redis-server's, over the posts
answered; the load generator's own CPU at saturation is reported beside it. The batch-size histogram
is the service's own metric. Redis MEMORY USAGE is sampled for users' state records, timelines and
seen post ids at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import redis

from benchmarks import post_set
from service.embedded_redis import EmbeddedRedis, free_port
from service.emotions import LABELS

ROOT = Path(__file__).resolve().parent.parent
BOUNDARY = "emodriftbenchboundary"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- workload ------------------------------------------------------------------------------------

def zipf_users(n_users: int, n: int, seed: int = 0, s: float = 1.1) -> list[str]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_users + 1) ** s
    return [f"u{k}" for k in rng.choice(n_users, size=n, p=weights / weights.sum())]


def multipart(image: bytes, post_id: str) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"post_id\"\r\n\r\n{post_id}\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + image + f"\r\n--{BOUNDARY}--\r\n".encode()


def raw_request(host: str, target: str, body: bytes, content_type: str) -> bytes:
    """One POST as bytes on the wire: what the open-loop client and wrk's request file send."""
    head = (f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode("latin-1") + body


@dataclass
class Workload:
    """Pre-built requests: (path, body, content type)."""

    requests: list[tuple[str, bytes, str]]
    cursor: int = 0

    def next(self) -> tuple[str, bytes, str]:
        item = self.requests[self.cursor % len(self.requests)]
        self.cursor += 1
        return item


def image_workload(images: list[bytes], users: list[str]) -> Workload:
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    reqs = []
    for i, user in enumerate(users):
        post_id = f"p{uuid.uuid4().hex[:16]}"
        reqs.append((f"/v1/users/{user}/posts", multipart(images[i % len(images)], post_id), ctype))
    return Workload(reqs)


def observation_workload(users: list[str], seed: int = 0) -> Workload:
    rng = np.random.default_rng(seed)
    reqs = []
    for user in users:
        p = rng.dirichlet(np.ones(len(LABELS)))
        body = {"post_id": f"o{uuid.uuid4().hex[:16]}", "probabilities": dict(zip(LABELS, np.round(p, 6).tolist()))}
        reqs.append((f"/v1/users/{user}/observations", json.dumps(body).encode(), "application/json"))
    return Workload(reqs)


# --- client --------------------------------------------------------------------------------------

@dataclass
class PhaseResult:
    name: str
    seconds: float
    ok: int = 0
    errors: dict[int | str, int] = field(default_factory=dict)  # status (599: no answer); wrk's: "non2xx", ...
    latencies: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # the server's and redis-server's
    percentiles: dict[float, float] = field(default_factory=dict)  # ms, from a client that keeps no latencies (wrk)
    client: str = "aiohttp"
    client_cpu_seconds: float = 0.0  # the load generator's own user+system time
    aof_rewrites: int = 0  # Redis AOF rewrites (a fork and a full write) begun during the phase

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def pct(self, q: float) -> float:
        if q in self.percentiles:
            return self.percentiles[q]
        return float(np.percentile(self.latencies, q)) * 1e3 if self.latencies else float("nan")


async def _send(session: aiohttp.ClientSession, base: str, item: tuple[str, bytes, str], result: PhaseResult,
                started: float) -> None:
    path, body, ctype = item
    try:
        async with session.post(base + path, data=body, headers={"content-type": ctype}) as resp:
            await resp.read()
            status = resp.status
    except aiohttp.ClientError:
        status = 599
    if status == 200:
        result.ok += 1
        result.latencies.append(time.perf_counter() - started)
    else:
        result.errors[status] = result.errors.get(status, 0) + 1


async def closed_loop(base: str, work: Workload, connections: int, seconds: float, name: str) -> PhaseResult:
    result = PhaseResult(name, seconds)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        deadline = time.perf_counter() + seconds
        begun = time.perf_counter()

        async def client() -> None:
            while time.perf_counter() < deadline:
                await _send(session, base, work.next(), result, time.perf_counter())

        await asyncio.gather(*(client() for _ in range(connections)))
        result.seconds = time.perf_counter() - begun
    return result


async def open_loop(base: str, work: Workload, rate: float, seconds: float, name: str,
                    connections: int = 64) -> PhaseResult:
    """Arrivals on a fixed schedule; latency from the scheduled time (no coordinated omission).

    A pool of ``connections`` keep-alive connections, opened before the clock starts (a platform
    backend keeps such a pool; opening connections mid-phase made their set-up part of the tail),
    each a loop over raw HTTP/1.1 requests on uvloop streams, so that the client's own CPU (recorded)
    stays small on 2 shared cores. An arrival with no idle connection waits for one, and that wait
    counts in its latency.
    """
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    result = PhaseResult(name, seconds)
    due_queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def connection(stream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        reader, writer = stream
        try:
            while (item := await due_queue.get()) is not None:
                due, raw = item
                try:
                    writer.write(raw)
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = re.search(rb"(?i)content-length: *(\d+)", head)
                    await reader.readexactly(int(length.group(1)) if length else 0)
                    status = int(head[9:12])
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    status = 599
                    reader, writer = await asyncio.open_connection(host, port)
                if status == 200:
                    result.ok += 1
                    result.latencies.append(time.perf_counter() - due)
                else:
                    result.errors[status] = result.errors.get(status, 0) + 1
        finally:
            writer.close()

    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    workers = [asyncio.create_task(connection(stream)) for stream in streams]
    cpu_before = _own_cpu()
    t0 = time.perf_counter() + 0.05
    for i in range(int(rate * seconds)):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        path, body, ctype = work.next()
        due_queue.put_nowait((due, raw_request(url.netloc, path, body, ctype)))
    for _ in workers:
        due_queue.put_nowait(None)
    await asyncio.gather(*workers)
    result.seconds = max(seconds, time.perf_counter() - t0)
    result.client, result.client_cpu_seconds = "raw-socket", _own_cpu() - cpu_before
    return result


# --- processes -------------------------------------------------------------------------------------

def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        children = [pid]
        for entry in Path("/proc").iterdir():  # uvicorn --workers N: the workers are children
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    children.append(int(entry.name))
        for child in children:
            try:
                fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


class Server:
    def __init__(self, args: list[str], env: dict[str, str], port: int, ready: str, cwd: Path = ROOT) -> None:
        self.port, self.ready = port, ready
        self.process = subprocess.Popen(args, env={**os.environ, **env}, cwd=cwd,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 90) -> "Server":
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                assert self.process.stderr is not None  # stderr=PIPE
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.base + self.ready, timeout=1).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def batch_histogram(base: str) -> dict[str, float]:
    import httpx

    text = httpx.get(base + "/metrics", timeout=5).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r'emodrift_inference_batch_size_bucket\{le="([^"]+)"[^}]*\} ([0-9.e+]+)', text)}


def post_outcomes(base: str) -> dict[str, float]:
    """The service's own count of posts by source and outcome (applied, duplicate, conflict,
    overloaded): what wrk's bare "non-2xx" was. With several workers, any one answers for all."""
    import httpx

    text = httpx.get(base + "/metrics", timeout=5).text
    out = {}
    for m in re.finditer(r'emodrift_posts_total\{([^}]*)\} ([0-9.e+]+)', text):  # label order varies
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        out[f"{labels.get('source')} {labels.get('outcome')}"] = float(m.group(2))
    return out


def round_trips(db: redis.Redis, run: Callable[[], int]) -> tuple[float, int]:
    """Commands from clients (not from inside scripts) per post answered by ``run()``, via MONITOR."""
    counts = {"client": 0}
    stop = threading.Event()

    def watch() -> None:
        with db.monitor() as monitor:
            for cmd in monitor.listen():
                if stop.is_set():
                    return
                if cmd.get("client_type") != "lua" and "lua" not in str(cmd.get("client_address", "")):
                    counts["client"] += 1

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.3)
    posts = run()
    time.sleep(0.3)
    stop.set()
    db.ping()  # wakes the monitor loop up
    watcher.join(5)
    return counts["client"] / max(posts, 1), posts


# --- the run -------------------------------------------------------------------------------------

def _own_cpu() -> float:
    """This process's user+system seconds: the aiohttp client's CPU (nothing else runs during a phase)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_idle(pids: list[int], busy: float = 0.1, step: float = 0.2, limit: float = 30.0) -> None:
    """Until the processes use less than ``busy`` of a core over ``step`` seconds (or ``limit`` passes)."""
    deadline = time.monotonic() + limit
    last = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(step)
        now = cpu_seconds(pids)
        if now - last < busy * step:
            return
        last = now


async def saturate(name: str, base: str, work: Workload, pids: list[int], args: argparse.Namespace,
                   connections: int) -> PhaseResult:
    if args.client == "wrk":
        from benchmarks.wrk_driver import wrk_closed_loop  # imports this module: not at the top

        sat = await asyncio.to_thread(wrk_closed_loop, base, work, connections, args.seconds,
                                      f"{name} saturation", probe=lambda: cpu_seconds(pids))
        # wrk leaves up to `connections` requests in flight, which the server still runs: not into the next phase
        await asyncio.to_thread(wait_idle, pids)
        return sat
    # aiohttp waits for its last requests and counts them, so their CPU belongs in the window
    before, client_before = cpu_seconds(pids), _own_cpu()
    sat = await closed_loop(base, work, connections, args.seconds, f"{name} saturation")
    sat.cpu_seconds = cpu_seconds(pids) - before
    sat.client_cpu_seconds = _own_cpu() - client_before
    return sat


def compact_aof(db: redis.Redis, timeout: float = 60.0) -> None:
    """Rewrite Redis's AOF now and wait for it, so that its automatic rewrite (a fork that writes the
    whole dataset out again) does not land at random inside a measured phase: on these 2 cores it
    competes with the service, where a production Redis on its own host would not. After it the AOF
    must double before the next automatic one, more than any one phase writes. Phases it still hits
    are flagged in the report."""
    if not db.info("persistence").get("aof_rewrite_in_progress"):
        try:
            db.bgrewriteaof()
        except redis.ResponseError:  # one already scheduled
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = db.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.1)


def aof_rewrites(db: redis.Redis) -> int:
    """Forks so far (with AOF on and RDB saves off, every fork is an AOF rewrite), one in progress counted."""
    info = db.info()
    return int(info.get("total_forks", 0)) + int(info.get("aof_rewrite_in_progress", 0))


async def measure(name: str, base: str, work_for: Callable[[], Workload], pids: list[int], args: argparse.Namespace,
                  db: redis.Redis, levels: bool = True, connections: tuple[int, ...] = ()) -> dict[str, PhaseResult]:
    """Saturation (the best over ``connections``, default ``--connections``), then the open-loop levels."""
    async def counted(phase):  # noqa: ANN001, ANN202 - a coroutine giving a PhaseResult
        compact_aof(db)
        before = aof_rewrites(db)
        result = await phase
        result.aof_rewrites = aof_rewrites(db) - before
        return result

    tried = {n: await counted(saturate(name, base, work_for(), pids, args, n))
             for n in connections or (args.connections,)}
    best = max(tried, key=lambda n: tried[n].rate)
    out = {"sat": tried[best], **{f"sat@{n}": sat for n, sat in tried.items()}}
    if levels:
        for level in (0.5, 0.9):
            rate = out["sat"].rate * level
            out[str(level)] = await counted(open_loop(base, work_for(), rate, args.seconds, f"{name} at {level:.0%}"))
    return out


def run(args: argparse.Namespace) -> dict:
    import uvloop

    uvloop.install()
    tmp = Path(tempfile.mkdtemp(prefix="emodrift-bench-"))
    red = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    assert red.process is not None  # started
    db = redis.Redis.from_url(red.url)
    n = 200_000
    users = zipf_users(args.users, n)
    faces = [p.data for p in post_set.face_posts("jpeg1080")]
    mixed = (faces[:70] + [p.data for p in post_set.face_posts("jpeg4000", n=10)]
             + [p.data for p in post_set.face_posts("png", n=10)] + [p.data for p in post_set.no_face_posts(n=10)])
    np.random.default_rng(1).shuffle(mixed)
    print(f"posts built: {len(faces)} 1080 JPEGs with a face (mean {np.mean([len(f) for f in faces]) / 1024:.0f} KiB), "
          f"{len(mixed)} mixed; {args.users} Zipf users", flush=True)
    redis_pid = red.process.pid
    results: dict = {"client": args.client}  # which load generator measured saturation
    try:
        port = free_port()
        fast = Server([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", str(args.workers),
                       "--log-level", "warning"],
                      {"EMODRIFT_REDIS_URL": red.url, "EMODRIFT_DATA_DIR": str(tmp / "data"),
                       "EMODRIFT_PROVIDER": args.provider}, port, "/readyz").wait()
        try:
            pids = [fast.process.pid, redis_pid]
            chunk = iter(range(0, n, 20_000))

            def images() -> Workload:
                k = next(chunk)
                return image_workload(faces, users[k:k + 20_000])

            # warm-up: ONNX sessions, first users, connection pools
            asyncio.run(closed_loop(fast.base, images(), args.connections, 2.0, "warm-up"))
            hist0 = batch_histogram(fast.base)
            results["image"] = asyncio.run(measure("service image", fast.base, images, pids, args, db,
                                                   levels=not args.quick))
            hist1 = batch_histogram(fast.base)
            results["batch_histogram"] = {le: hist1[le] - hist0.get(le, 0) for le in hist1}
            if args.quick:  # the headline saturation only (benchmarks/gpu_check.sh)
                results["outcomes"] = post_outcomes(fast.base)
                return results
            results["mixed"] = asyncio.run(measure(
                "service mixed", fast.base, lambda: image_workload(mixed, users[:20_000]), pids, args, db, levels=False))
            obs_users = iter(range(0, n, 40_000))
            results["observation"] = asyncio.run(measure(
                "service observations", fast.base,
                lambda: observation_workload(users[(k := next(obs_users)):k + 40_000]), pids, args, db))
            results["outcomes"] = post_outcomes(fast.base)
            results["rt_image"] = round_trips(db, lambda: asyncio.run(
                closed_loop(fast.base, image_workload(faces, users[:2000]), 8, 1.5, "monitor")).ok)
            results["rt_observation"] = round_trips(db, lambda: asyncio.run(
                closed_loop(fast.base, observation_workload(users[:4000], seed=9), 8, 1.5, "monitor")).ok)
        finally:
            fast.stop()
        if args.quick:
            return results
        results["memory"] = memory(db)
        if not args.skip_naive:
            port = free_port()
            naive = Server([sys.executable, "-m", "benchmarks.naive", "--port", str(port), "--redis-url", red.url],
                           {}, port, "/docs").wait()
            try:
                work = image_workload(faces, users[100_000:120_000])
                asyncio.run(closed_loop(naive.base, work, args.connections, 2.0, "warm-up"))
                results["naive"] = asyncio.run(measure(
                    "naive image", naive.base, lambda: image_workload(faces, users[120_000:140_000]),
                    [naive.process.pid, redis_pid], args, db, levels=True,
                    # the baseline at its best: its thread pool does worse with many connections at once
                    connections=tuple(sorted({8, args.connections}))))
                results["rt_naive"] = round_trips(db, lambda: asyncio.run(
                    closed_loop(naive.base, image_workload(faces, users[140_000:141_000]), 8, 1.5, "monitor")).ok)
            finally:
                naive.stop()
    finally:
        red.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the AOF alone is tens of MB
    return results


def shadow_overhead(args: argparse.Namespace, rounds: int = 4) -> dict:
    """CPU per observation of the service with a shadow temporal model (``--shadow N``) against without,
    in one run: both services up on one Redis, measured in alternating saturation phases (so a neighbour's
    load lands on both), each on users of its own. CPU: the service's and redis-server's, over the posts
    answered. The ratio is what docs/shadow.md quotes."""
    import uvloop

    uvloop.install()
    tmp = Path(tempfile.mkdtemp(prefix="emodrift-bench-"))
    red = EmbeddedRedis(tmp / "redis", port=free_port()).start()
    assert red.process is not None  # started
    db = redis.Redis.from_url(red.url)
    users = zipf_users(args.users, 400_000)
    servers: dict[str, Server] = {}
    phases: dict[str, list[PhaseResult]] = {"plain": [], "shadow": []}
    try:
        for name, extra in (("plain", {}), ("shadow", {"EMODRIFT_SHADOW_TEMPORAL_MODEL_VERSION": str(args.shadow)})):
            port = free_port()
            servers[name] = Server(
                [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", str(args.workers),
                 "--log-level", "warning"],
                {"EMODRIFT_REDIS_URL": red.url, "EMODRIFT_DATA_DIR": str(tmp / name),
                 "EMODRIFT_PROVIDER": args.provider, **extra}, port, "/readyz").wait()
        chunks = iter(range(0, len(users), 20_000))

        def work(name: str) -> Workload:
            k = next(chunks)
            return observation_workload([f"{name}-{u}" for u in users[k:k + 20_000]], seed=k)

        for name, server in servers.items():  # warm-up: sessions, first users, connection pools
            asyncio.run(closed_loop(server.base, work(name), args.connections, 2.0, "warm-up"))
        for r in range(rounds):  # plain, shadow, then shadow, plain...: neither always goes first
            for name, server in (list(servers.items()) if r % 2 == 0 else list(servers.items())[::-1]):
                compact_aof(db)
                phases[name].append(asyncio.run(saturate(
                    f"observations {name}", server.base, work(name), [server.process.pid, red.process.pid], args,
                    args.connections)))
    finally:
        for server in servers.values():
            server.stop()
        red.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    per_post = {name: sum(p.cpu_seconds for p in runs) / max(1, sum(p.ok for p in runs)) * 1e6
                for name, runs in phases.items()}
    rate = {name: sum(p.ok for p in runs) / sum(p.seconds for p in runs) for name, runs in phases.items()}
    return {"shadow_version": args.shadow, "rounds": rounds, "in_process_us": shadow_step_cost(args.shadow),
            "ratio_per_round": [round(s.cpu_seconds / max(1, s.ok) / (p.cpu_seconds / max(1, p.ok)), 3)
                                for p, s in zip(phases["plain"], phases["shadow"])], "seconds": args.seconds, "workers": args.workers,
            "cpu_us_per_observation": {k: round(v, 1) for k, v in per_post.items()},
            "observations_per_second": {k: round(v, 1) for k, v in rate.items()},
            "errors": {name: sum(sum(p.errors.values()) for p in runs) for name, runs in phases.items()},
            "cpu_ratio": round(per_post["shadow"] / per_post["plain"], 3)}


def shadow_step_cost(version: int, posts: int = 20_000) -> dict[str, float]:
    """What a shadow adds to one post in the service's own Python, in µs of this thread's CPU: its step
    (LSTM, detector, slot) and the record's larger encode and decode. Free of the HTTP stack's noise."""
    from service import model_repository
    from service.config import Settings
    from service.inference import ProviderChoice
    from service.calibration import detector_config, overrides
    from service.shadow import Shadow
    from service.state_store import UserState, encode_record
    from service.temporal import TemporalModel

    settings = Settings()
    served = TemporalModel(model_repository.load(settings.model_repository, "temporal"), ProviderChoice("cpu", "bench"))
    candidate = TemporalModel(model_repository.load(settings.model_repository, "temporal", version),
                              ProviderChoice("cpu", "bench"))
    shadow = Shadow(candidate, detector_config(candidate.artifact.manifest, overrides(settings), candidate.score_profile),
                    served.artifact.tag)
    rng = np.random.default_rng(0)
    xs = [served.features(rng.dirichlet(np.ones(len(LABELS))).astype(np.float32), 3600.0, True) for _ in range(posts)]
    h, c = served.initial_state()
    state = UserState(1, h, c, served.artifact.tag, detector={"status": "stable"})

    def record_cycle() -> None:
        UserState.from_record(encode_record(state.version, state.h, state.c, state.meta()))

    started = time.thread_time()
    for _ in range(posts):
        record_cycle()
    plain = time.thread_time() - started
    started = time.thread_time()
    for x in xs:
        shadow.advance(state, x, x[:len(LABELS)], None)
        record_cycle()
    with_shadow = time.thread_time() - started
    step = time.thread_time()
    for x in xs:
        served.step(x, h, c)
    served_step = time.thread_time() - step
    return {"shadow_step_and_record": round((with_shadow - plain) / posts * 1e6, 1),
            "served_lstm_step": round(served_step / posts * 1e6, 1)}


def memory(db: redis.Redis, sample: int = 50) -> dict[str, float]:
    users = [k.decode() for k in db.scan_iter(match="ed:{*}:state", count=1000)][:sample]
    out: dict[str, list[int]] = {"state": [], "timeline": [], "timeline_items": [], "seen": []}
    for key in users:
        prefix = key[: -len(":state")]
        out["state"].append(db.memory_usage(key, samples=0) or 0)
        out["timeline"].append(db.memory_usage(prefix + ":timeline", samples=0) or 0)
        out["timeline_items"].append(db.llen(prefix + ":timeline"))
        out["seen"].append(db.memory_usage(prefix + ":seen", samples=0) or 0)
    return {k: float(np.mean(v)) if v else float("nan") for k, v in out.items()} | {
        "state_max": float(max(out["state"], default=0))}


def report(results: dict, args: argparse.Namespace) -> str:
    lines = ["| workload | sustained /s | CPU ms / post | p50 / p99 ms at 50% | p50 / p99 ms at 90% | errors |",
             "|---|---|---|---|---|---|"]

    def row(label: str, phases: dict[str, PhaseResult]) -> None:
        sat = phases["sat"]
        cells = [f"{sat.rate:.0f}", f"{1e3 * sat.cpu_seconds / max(sat.ok, 1):.1f}"]
        for level in ("0.5", "0.9"):
            p = phases.get(level)
            cells.append((f"{p.pct(50):.1f} / {p.pct(99):.1f}" + (" (AOF rewrite)" if p.aof_rewrites else ""))
                         if p else "-")
        errors: dict[int | str, int] = {}
        for p in {id(p): p for p in phases.values()}.values():  # "sat" is also one of the "sat@N"
            for code, count in p.errors.items():
                errors[code] = errors.get(code, 0) + count
        cells.append(", ".join(f"{c}: {k}" for c, k in sorted(errors.items(), key=str)) or "0")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("service: 1080x1080 JPEG with a face", results["image"])
    if "mixed" in results:
        row("service: mixed (70% 1080 JPEG, 10% 4000x3000, 10% PNG, 10% no face)", results["mixed"])
    if "observation" in results:
        row("service: observations (JSON probabilities)", results["observation"])
    if "naive" in results:
        row("naive baseline: 1080x1080 JPEG with a face", results["naive"])
    out = ["\n".join(lines), ""]
    if "naive" in results:
        fast, naive = results["image"]["sat"], results["naive"]["sat"]
        tried = {k[4:]: v for k, v in results["naive"].items() if k.startswith("sat@")}
        out.append("naive saturation, the best of: " + ", ".join(f"{v.rate:.0f}/s at {k} connections"
                                                                for k, v in tried.items()))
        out.append(f"image posts/s, service / naive: {fast.rate / naive.rate:.1f}x; CPU per post, naive / service: "
                   f"{(naive.cpu_seconds / naive.ok) / (fast.cpu_seconds / fast.ok):.1f}x")
    if "rt_image" in results:
        rt = (f"Redis round trips per post: image {results['rt_image'][0]:.2f}, "
              f"observation {results['rt_observation'][0]:.2f}")
        if "rt_naive" in results:
            rt += f", naive {results['rt_naive'][0]:.2f}"
        out.append(rt)
    hist = results["batch_histogram"]
    total = max(hist.get("+Inf", 0), 1)
    prev, cells = 0.0, []
    for le, count in sorted(((k, v) for k, v in hist.items() if k != "+Inf"), key=lambda kv: float(kv[0])):
        if count - prev:
            cells.append(f"<={float(le):g}: {100 * (count - prev) / total:.0f}%")
        prev = count
    out.append(f"CNN batch sizes (share of batches, {'saturation' if args.quick else 'saturation + 50% + 90%'} "
               "image phases): " + ", ".join(cells))
    if "memory" in results:
        mem = results["memory"]
        out.append(f"Redis MEMORY USAGE per user: state record {mem['state']:.0f} B (max {mem['state_max']:.0f}); "
                   f"timeline {mem['timeline']:.0f} B for {mem['timeline_items']:.0f} results (the idempotency records too); "
                   f"seen post ids {mem['seen']:.0f} B")
    phases = [(label, results[key]["sat"]) for key, label in
              (("image", "image"), ("mixed", "mixed"), ("observation", "observations"), ("naive", "naive"))
              if key in results]
    if "outcomes" in results:
        out.append("posts by outcome over the service's phases (its own metric): "
                   + ", ".join(f"{k}: {v:.0f}" for k, v in sorted(results["outcomes"].items())))
    out.append(f"saturation measured by the {results.get('client', 'aiohttp')} client (closed loop, "
               f"{args.connections} connections); the p50 / p99 phases by the raw-socket open-loop client. "
               "The load generator's own CPU at saturation: "
               + ", ".join(f"{label} {sat.client_cpu_seconds:.1f} s in {sat.seconds:.1f} s "
                           f"({100 * sat.client_cpu_seconds / sat.seconds:.0f}% of a core, "
                           f"{1e3 * sat.client_cpu_seconds / max(sat.ok, 1):.2f} ms / post)" for label, sat in phases))
    out.append(f"settings: {args.connections} connections, {args.seconds:g} s per phase, {args.workers} worker(s), "
               f"{os.cpu_count()} CPUs, EMODRIFT_PROVIDER={args.provider}" + (", --quick" if args.quick else ""))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--connections", type=int, default=64, help="closed-loop clients at saturation")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2,
                        help="uvicorn worker processes of the service (2: what docker-compose and deploy/ run)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--client", choices=("auto", "wrk", "aiohttp"), default="auto",
                        help="load generator of the closed-loop saturation phases (auto: wrk when on PATH); "
                             "the open-loop phases always use the raw-socket client of open_loop()")
    parser.add_argument("--provider", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="the service's EMODRIFT_PROVIDER (cuda: benchmarks/gpu_check.sh on a GPU machine)")
    parser.add_argument("--quick", action="store_true",
                        help="the image saturation phase alone (no latency levels, mixed, observations, round "
                             "trips, memory or naive baseline): posts/s in well under a minute")
    parser.add_argument("--shadow", type=int, metavar="VERSION",
                        help="only compare CPU per observation with a shadow temporal model of this version "
                             "against without one, in alternating phases of one run (docs/shadow.md)")
    parser.add_argument("--json", type=Path, help="write the run's figures (as in docs/performance.json) here")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"write the report into {DOC.relative_to(ROOT)} (between the markers for this worker "
                             f"count) and the figures into {FIGURES.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.write_docs and args.quick:
        parser.error("--write-docs needs the full run, not --quick")
    from benchmarks.wrk_driver import have_wrk

    if args.client == "wrk" and not have_wrk():
        parser.error("--client wrk: wrk is not on PATH (apt-get install wrk, or `make bench`)")
    if args.client == "auto":
        args.client = "wrk" if have_wrk() else "aiohttp"
    print(f"saturation client: {args.client}", flush=True)
    started, load_before = time.monotonic(), os.getloadavg()
    if args.shadow is not None:
        overhead = shadow_overhead(args)
        print(json.dumps(overhead, indent=2))
        if args.json:
            args.json.write_text(json.dumps(overhead, indent=2, sort_keys=True) + "\n")
        return 0
    results = run(args)
    text = report(results, args) + (
        f"\nload average (1 min) before / after the run: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}; "
        f"the benchmark took {time.monotonic() - started:.0f} s")
    print(text)
    if args.json:
        args.json.write_text(json.dumps(figures(results, args), indent=2, sort_keys=True, default=str) + "\n")
    if args.write_docs:
        write_docs(text, results, args)
    return 0


DOC = ROOT / "docs" / "performance.md"
FIGURES = ROOT / "docs" / "performance.json"


def markers(workers: int) -> tuple[str, str]:
    """docs/performance.md keeps one generated block per worker count."""
    return f"<!-- load-benchmark:{workers}-workers:begin -->", f"<!-- load-benchmark:{workers}-workers:end -->"


def figures(results: dict, args: argparse.Namespace) -> dict:
    """The run's numbers, machine-readable: what docs/performance.md's table was printed from."""
    def phase(p: PhaseResult) -> dict:
        return {"rate_per_s": round(p.rate, 1), "ok": p.ok, "seconds": round(p.seconds, 2),
                # measured over the saturation phases only
                "cpu_ms_per_post": round(1e3 * p.cpu_seconds / max(p.ok, 1), 3) if p.cpu_seconds else None,
                "p50_ms": round(p.pct(50), 2), "p99_ms": round(p.pct(99), 2),
                "errors": {str(k): v for k, v in p.errors.items()}, "client": p.client,
                "client_cpu_seconds": round(p.client_cpu_seconds, 3), "aof_rewrites": p.aof_rewrites}

    out: dict = {"settings": {k: v for k, v in vars(args).items() if k not in ("write_docs", "json")},
                 "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for key, value in results.items():
        if isinstance(value, dict) and value and all(isinstance(v, PhaseResult) for v in value.values()):
            out[key] = {name: phase(p) for name, p in value.items()}
        elif key.startswith("rt_"):
            out[key] = {"round_trips_per_post": round(value[0], 3), "posts": value[1]}
        else:
            out[key] = value
    return out


def write_docs(text: str, results: dict, args: argparse.Namespace) -> None:
    begin, end = markers(args.workers)
    doc = DOC.read_text()
    if begin not in doc or end not in doc:
        raise SystemExit(f"{DOC}: markers {begin} / {end} not found")
    head, rest = doc.split(begin, 1)
    DOC.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")
    runs = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    runs[f"{args.workers}-workers"] = figures(results, args)
    FIGURES.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n")
    print(f"wrote {DOC.relative_to(ROOT)} and {FIGURES.relative_to(ROOT)}")


if __name__ == "__main__":
    # run the copy imported as benchmarks.load, the one wrk_driver imports: one PhaseResult class
    from benchmarks.load import main as _main

    raise SystemExit(_main())
