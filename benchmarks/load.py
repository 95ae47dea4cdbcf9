"""``python -m benchmarks.load``: the service under load on 127.0.0.1, against the naive baseline.

One command, bounded in time (about 3 minutes with the defaults), loopback only. It starts a real
redis-server (AOF on, as ``emodrift serve`` runs it) and, in turn, ``emodrift serve`` and the naive
baseline (benchmarks/naive.py), each in its own process, and drives them with keep-alive connections
(request bodies built before the clock starts): the saturation phases with wrk when it is on PATH
(benchmarks/wrk_driver.py; a C client, so the 2 cores go to the server rather than to the client;
``--client aiohttp`` to compare), the open-loop phases with an aiohttp client (uvloop, one process).

Posts come from benchmarks/post_set.py: 1080x1080 JPEGs with a face for the headline, and a mix of
1080 and 4000x3000 JPEGs, PNGs and no-face posts. 1000 users, Zipf-distributed (s = 1.1): a few
users post a lot, as on a real platform. Every post id is new. Phases, each ``--seconds`` long:

- saturation: ``--connections`` clients in a closed loop → sustained posts/s;
- open loop at 50% and 90% of that rate (arrivals on a fixed schedule; latency counted from the
  scheduled time, so a stall is not hidden) → p50 / p99;
- the same for the observations endpoint (probabilities in, no image);
- a short MONITOR sample → Redis round trips per post (commands from clients; script-internal
  calls are not round trips).

CPU per post is the server's user+system time (all its threads) plus redis-server's, over the posts
answered; the load generator's own CPU at saturation is reported beside it. The batch-size histogram
is the service's own metric. Redis MEMORY USAGE is sampled for users' state records, timelines and
idempotency records at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import redis

from benchmarks import post_set
from service.embedded_redis import EmbeddedRedis, free_port
from service.temporal import LABELS

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


async def open_loop(base: str, work: Workload, rate: float, seconds: float, name: str) -> PhaseResult:
    """Arrivals on a fixed schedule; latency from the scheduled time (no coordinated omission)."""
    result = PhaseResult(name, seconds)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        t0 = time.perf_counter() + 0.05
        tasks = []
        for i in range(int(rate * seconds)):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(session, base, work.next(), result, due)))
        await asyncio.gather(*tasks)
        result.seconds = max(seconds, time.perf_counter() - t0)
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
    def __init__(self, args: list[str], env: dict[str, str], port: int, ready: str) -> None:
        self.port, self.ready = port, ready
        self.process = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 90) -> "Server":
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
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


def round_trips(db: redis.Redis, run: callable) -> tuple[float, int]:
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


async def measure(name: str, base: str, work_for: callable, pids: list[int], args: argparse.Namespace,
                  levels: bool = True) -> dict[str, PhaseResult]:
    out = {}
    work = work_for()  # built before the clock starts
    if args.client == "wrk":
        from benchmarks.wrk_driver import wrk_closed_loop  # imports this module: not at the top

        out["sat"] = await asyncio.to_thread(wrk_closed_loop, base, work, args.connections, args.seconds,
                                             f"{name} saturation", probe=lambda: cpu_seconds(pids))
        # wrk leaves up to --connections requests in flight, which the server still runs: not into the next phase
        await asyncio.to_thread(wait_idle, pids)
    else:
        # aiohttp waits for its last requests and counts them, so their CPU belongs in the window
        before, client_before = cpu_seconds(pids), _own_cpu()
        out["sat"] = await closed_loop(base, work, args.connections, args.seconds, f"{name} saturation")
        out["sat"].cpu_seconds = cpu_seconds(pids) - before
        out["sat"].client_cpu_seconds = _own_cpu() - client_before
    if levels:
        for level in (0.5, 0.9):
            rate = out["sat"].rate * level
            out[str(level)] = await open_loop(base, work_for(), rate, args.seconds, f"{name} at {level:.0%}")
    return out


def run(args: argparse.Namespace) -> dict:
    import uvloop

    uvloop.install()
    tmp = Path(tempfile.mkdtemp(prefix="emodrift-bench-"))
    red = EmbeddedRedis(tmp / "redis", port=free_port()).start()
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
                       "EMODRIFT_PROVIDER": "cpu"}, port, "/readyz").wait()
        try:
            pids = [fast.process.pid, redis_pid]
            chunk = iter(range(0, n, 20_000))

            def images() -> Workload:
                k = next(chunk)
                return image_workload(faces, users[k:k + 20_000])

            # warm-up: ONNX sessions, first users, connection pools
            asyncio.run(closed_loop(fast.base, images(), args.connections, 2.0, "warm-up"))
            hist0 = batch_histogram(fast.base)
            results["image"] = asyncio.run(measure("service image", fast.base, images, pids, args))
            hist1 = batch_histogram(fast.base)
            results["batch_histogram"] = {le: hist1[le] - hist0.get(le, 0) for le in hist1}
            results["mixed"] = asyncio.run(measure(
                "service mixed", fast.base, lambda: image_workload(mixed, users[:20_000]), pids, args, levels=False))
            obs_users = iter(range(0, n, 40_000))
            results["observation"] = asyncio.run(measure(
                "service observations", fast.base,
                lambda: observation_workload(users[(k := next(obs_users)):k + 40_000]), pids, args))
            results["rt_image"] = round_trips(db, lambda: asyncio.run(
                closed_loop(fast.base, image_workload(faces, users[:2000]), 8, 1.5, "monitor")).ok)
            results["rt_observation"] = round_trips(db, lambda: asyncio.run(
                closed_loop(fast.base, observation_workload(users[:4000], seed=9), 8, 1.5, "monitor")).ok)
        finally:
            fast.stop()
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
                    [naive.process.pid, redis_pid], args, levels=True))
                results["rt_naive"] = round_trips(db, lambda: asyncio.run(
                    closed_loop(naive.base, image_workload(faces, users[140_000:141_000]), 8, 1.5, "monitor")).ok)
            finally:
                naive.stop()
    finally:
        red.stop()
    return results


def memory(db: redis.Redis, sample: int = 50) -> dict[str, float]:
    users = [k.decode() for k in db.scan_iter(match="ed:{*}:state", count=1000)][:sample]
    out: dict[str, list[int]] = {"state": [], "timeline": [], "timeline_items": [], "post": [], "post_index": []}
    for key in users:
        prefix = key[: -len(":state")]
        out["state"].append(db.memory_usage(key, samples=0) or 0)
        out["timeline"].append(db.memory_usage(prefix + ":timeline", samples=0) or 0)
        out["timeline_items"].append(db.llen(prefix + ":timeline"))
        out["post_index"].append(db.memory_usage(prefix + ":posts", samples=0) or 0)
        for post_key in db.scan_iter(match=prefix.replace("{", "[{]").replace("}", "[}]") + ":post:*", count=100):
            out["post"].append(db.memory_usage(post_key, samples=0) or 0)
            break
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
            cells.append(f"{p.pct(50):.1f} / {p.pct(99):.1f}" if p else "-")
        errors = {}
        for p in phases.values():
            for code, count in p.errors.items():
                errors[code] = errors.get(code, 0) + count
        cells.append(", ".join(f"{c}: {k}" for c, k in sorted(errors.items(), key=str)) or "0")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("service: 1080x1080 JPEG with a face", results["image"])
    row("service: mixed (70% 1080 JPEG, 10% 4000x3000, 10% PNG, 10% no face)", results["mixed"])
    row("service: observations (JSON probabilities)", results["observation"])
    if "naive" in results:
        row("naive baseline: 1080x1080 JPEG with a face", results["naive"])
    out = ["\n".join(lines), ""]
    if "naive" in results:
        fast, naive = results["image"]["sat"], results["naive"]["sat"]
        out.append(f"image posts/s, service / naive: {fast.rate / naive.rate:.1f}x; CPU per post, naive / service: "
                   f"{(naive.cpu_seconds / naive.ok) / (fast.cpu_seconds / fast.ok):.1f}x")
    rt = f"Redis round trips per post: image {results['rt_image'][0]:.2f}, observation {results['rt_observation'][0]:.2f}"
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
    out.append("CNN batch sizes (share of batches, saturation + 50% + 90% image phases): " + ", ".join(cells))
    mem = results["memory"]
    out.append(f"Redis MEMORY USAGE per user: state record {mem['state']:.0f} B (max {mem['state_max']:.0f}); "
               f"timeline {mem['timeline']:.0f} B for {mem['timeline_items']:.0f} results; "
               f"idempotency record {mem['post']:.0f} B per post; post index {mem['post_index']:.0f} B")
    phases = [(label, results[key]["sat"]) for key, label in
              (("image", "image"), ("mixed", "mixed"), ("observation", "observations"), ("naive", "naive"))
              if key in results]
    out.append(f"saturation measured by the {results.get('client', 'aiohttp')} client (closed loop, "
               f"{args.connections} connections); the p50 / p99 phases by the aiohttp client (open loop). "
               "The load generator's own CPU at saturation: "
               + ", ".join(f"{label} {sat.client_cpu_seconds:.1f} s in {sat.seconds:.1f} s "
                           f"({100 * sat.client_cpu_seconds / sat.seconds:.0f}% of a core, "
                           f"{1e3 * sat.client_cpu_seconds / max(sat.ok, 1):.2f} ms / post)" for label, sat in phases))
    out.append(f"settings: {args.connections} connections, {args.seconds:.0f} s per phase, {args.workers} worker(s), "
               f"{os.cpu_count()} CPUs")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--connections", type=int, default=64, help="closed-loop clients at saturation")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the service")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--client", choices=("auto", "wrk", "aiohttp"), default="auto",
                        help="load generator of the closed-loop saturation phases (auto: wrk when on PATH); "
                             "the open-loop phases always use aiohttp")
    args = parser.parse_args(argv)
    from benchmarks.wrk_driver import have_wrk

    if args.client == "wrk" and not have_wrk():
        parser.error("--client wrk: wrk is not on PATH (apt-get install wrk, or `make bench`)")
    if args.client == "auto":
        args.client = "wrk" if have_wrk() else "aiohttp"
    print(f"saturation client: {args.client}", flush=True)
    started = time.monotonic()
    results = run(args)
    print(report(results, args))
    print(f"(benchmark took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    # run the copy imported as benchmarks.load, the one wrk_driver imports: one PhaseResult class
    from benchmarks.load import main as _main

    raise SystemExit(_main())
