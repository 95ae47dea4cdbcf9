"""A real 3-master Redis Cluster on 127.0.0.1 for tests: three redis-server processes in cluster
mode, slots split in three, joined with CLUSTER MEET (what `redis-cli --cluster create` does)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from service.embedded_redis import die_with_parent, find_server, free_port

SLOTS = 16384


def _cluster_port() -> int:
    """A free port <= 55535 whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisCluster:
    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        self.data_dir = Path(data_dir)
        self.ports = [_cluster_port() for _ in range(masters)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def _start_node(self, port: int, deadline: float) -> redis.Redis:
        """One cluster-enabled redis-server on ``port``, answering pings; a client of it."""
        node_dir = self.data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        self.processes.append(subprocess.Popen(
            [find_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
             "--appendonly", "yes", "--save", "", "--logfile", str(node_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent))
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        while True:
            try:
                client.ping()
                return client
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    client.close()
                    raise
                time.sleep(0.05)

    def start(self, timeout: float = 30.0) -> "RedisCluster":
        deadline = time.monotonic() + timeout
        clients = [self._start_node(port, deadline) for port in self.ports]
        share = SLOTS // len(self.ports)
        for i, client in enumerate(clients):
            last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER ADDSLOTS", *range(i * share, last + 1))
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", "127.0.0.1", self.ports[0])
        while True:
            infos = [c.execute_command("CLUSTER INFO") for c in clients]  # parsed into a dict
            if all(i["cluster_state"] == "ok" and int(i["cluster_known_nodes"]) == len(clients) for i in infos):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not form: {infos}")
            time.sleep(0.1)
        for client in clients:
            client.close()
        return self

    def cli(self, *args: str, timeout: float = 300) -> str:
        """``redis-cli`` (the one beside the redis-server in use) against this cluster; its output."""
        binary = Path(find_server()).with_name("redis-cli")
        done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli {' '.join(args)}: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return done.stdout

    def add_master(self) -> int:
        """Start one more empty master and join it (``redis-cli --cluster add-node``); it owns no slot
        until slots are moved to it (``rebalance``). Returns its port."""
        port = _cluster_port()
        deadline = time.monotonic() + 30
        self._start_node(port, deadline).close()
        self.cli("--cluster", "add-node", f"127.0.0.1:{port}", f"127.0.0.1:{self.ports[0]}")
        self.ports.append(port)
        while True:  # known to every node (gossip), or a rebalance run from one of them leaves it out
            infos = []
            for p in self.ports:
                with redis.Redis(host="127.0.0.1", port=p) as client:
                    infos.append(client.execute_command("CLUSTER INFO"))
            if all(int(i["cluster_known_nodes"]) == len(self.ports) and i["cluster_state"] == "ok" for i in infos):
                return port
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {port} not known to all: {infos}")
            time.sleep(0.1)

    def rebalance(self) -> str:
        """Move slots (and their keys, MIGRATE by MIGRATE) so every master, the empty ones too, owns
        an even share: what an operator runs after adding a master."""
        return self.cli("--cluster", "rebalance", f"127.0.0.1:{self.ports[0]}", "--cluster-use-empty-masters",
                        "--cluster-yes", timeout=600)

    def slots_of(self, port: int) -> int:
        """How many slots the master on ``port`` owns (its own ``CLUSTER NODES`` line)."""
        for line in self.cli("-p", str(port), "cluster", "nodes").splitlines():
            fields = line.split()
            if "myself" in fields[2]:
                ranges = [f.split("-") for f in fields[8:] if not f.startswith("[")]
                return sum(int(r[-1]) - int(r[0]) + 1 for r in ranges)
        raise RuntimeError(f"no node on {port}")

    def slot_owner(self, slot: int) -> int:
        """The port of the master that owns ``slot`` (``CLUSTER NODES`` as the first node sees it)."""
        for line in self.cli("-p", str(self.ports[0]), "cluster", "nodes").splitlines():
            fields = line.split()
            for taken in (f.split("-") for f in fields[8:] if not f.startswith("[")):
                if int(taken[0]) <= slot <= int(taken[-1]):
                    return int(fields[1].split("@")[0].rsplit(":", 1)[1])
        raise RuntimeError(f"no master owns slot {slot}")

    def flush(self) -> None:
        for port in self.ports:
            with redis.Redis(host="127.0.0.1", port=port) as client:
                client.flushall()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes = []


def serve_api(url: str, data_dir: Path, log: Path | None = None,
              env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """An API process (``emodrift serve``) on the cluster at ``url``, once ready: the process and its base
    URL. Its output goes to ``log`` (quoted when it exits early), else nowhere; ``env`` adds settings."""
    port = free_port()
    full_env = {**os.environ, "EMODRIFT_REDIS_URL": url, "EMODRIFT_REDIS_CLUSTER": "true",
                "EMODRIFT_DATA_DIR": str(data_dir),
                "EMODRIFT_REDIS_TIMEOUT_SECONDS": "5",  # CI machines are small and shared
                **(env or {})}
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--log-level", "warning"]
    if log is None:
        proc = subprocess.Popen(command, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    else:
        with log.open("wb") as out:
            proc = subprocess.Popen(command, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the API process exited" + (": " + log.read_text()[-3000:] if log else "")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API process did not get ready"
        time.sleep(0.2)
