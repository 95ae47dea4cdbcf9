"""`emodrift serve` as a user runs it: its own Redis when none is configured, stopped on exit."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.cli import available_cpus, build_parser
from service.embedded_redis import free_port
from tests.conftest import interrupt
from tests.constants import HAPPY

ROOT = Path(__file__).resolve().parent.parent


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("service not ready in time")


@pytest.mark.slow
def test_serve_starts_and_stops_an_embedded_redis(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_REDIS")}
    env["EMODRIFT_DATA_DIR"] = str(tmp_path / "data")
    cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        for i in range(4):
            r = httpx.post(f"{url}/v1/users/cli-user/observations", json={"post_id": f"p{i}", "probabilities": HAPPY})
            assert r.status_code == 200, r.text
        assert httpx.get(f"{url}/v1/users/cli-user").json()["drift"]["posts_seen"] == 4
        # two workers, one exposition: every scrape (whichever worker answers) sums both processes
        for _ in range(8):
            with httpx.Client() as fresh:  # a new connection each time, so both workers get scraped
                text = fresh.get(f"{url}/metrics").text
            line = next(l for l in text.splitlines()
                        if l.startswith('emodrift_posts_total{outcome="applied",source="observation"}'))
            assert float(line.split()[-1]) == 4.0, line
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output = proc.communicate(timeout=60)[0].decode()
        except subprocess.TimeoutExpired:  # never leave it running; its redis-server dies with it
            proc.kill()
            output = proc.communicate()[0].decode()
    assert proc.returncode == 0, output
    assert "embedded Redis" in output
    assert (tmp_path / "data" / "redis.log").exists()
    assert any((tmp_path / "data").glob("appendonly*")), list((tmp_path / "data").iterdir())
    assert not (tmp_path / "data" / "redis.sock").exists(), "the embedded redis-server is still running"


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_exits_non_zero_when_its_workers_cannot_start(tmp_path: Path, workers: str) -> None:
    """With several workers, uvicorn's supervisor stopped after a worker failed to start and the command
    exited 0: a Deployment showed "Completed" and a restart-on-failure policy never restarted it. The
    fault: a model file that is no ONNX graph, its manifest's digest matching (only a worker's session
    reads the graph)."""
    repository = tmp_path / "models"
    shutil.copytree(ROOT / "model_repository", repository)
    served = repository / "temporal" / str(max(int(p.name) for p in (repository / "temporal").iterdir() if p.name.isdigit()))
    (served / "model.onnx").write_bytes(b"not an onnx graph")
    manifest = json.loads((served / "manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(b"not an onnx graph").hexdigest()
    (served / "manifest.json").write_text(json.dumps(manifest))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env.update(EMODRIFT_DATA_DIR=str(tmp_path / "data"), EMODRIFT_MODEL_REPOSITORY=str(repository))
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--port", str(free_port()),
                           "--workers", workers], env=env, capture_output=True, timeout=120)
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    assert not (tmp_path / "data" / "redis.sock").exists(), "the embedded redis-server is still running"


@pytest.mark.parametrize(("variable", "value", "said"), [
    ("EMODRIFT_EMOTION_MODEL_VERSION", "99", "cannot load the models: 'emotion_cnn' has versions"),
    ("EMODRIFT_RECOVERY_THRESHOLD", "0.99", "detector does not fit these settings: need 0 < recovery_threshold (0.99)"),
    ("EMODRIFT_SHADOW_TEMPORAL_MODEL_VERSION", "1", "the shadow temporal:1 has no detector calibration in its "
                                                   "manifest: calibrate it with `python -m benchmarks.calibrate "
                                                   "--write --version 1`"),
    ("EMODRIFT_TEMPORAL_MODEL_VERSION", "1", "cannot load the models: the temporal model's manifest has no detector"),
    ("EMODRIFT_SHADOW_TEMPORAL_MODEL_VERSION", "4", "the shadow temporal:4 is the served version"),  # unpinned: 4
    ("EMODRIFT_REDIS_TIMEOUT_SECONDS", "inf", "EMODRIFT_REDIS_TIMEOUT_SECONDS: Input should be a finite number"),
    ("EMODRIFT_REDIS_TIMEOUT_SECONDS", "1e300", "EMODRIFT_REDIS_TIMEOUT_SECONDS: Input should be less than or equal")])
def test_serve_refuses_models_and_settings_that_cannot_serve_in_one_line(
        tmp_path: Path, variable: str, value: str, said: str) -> None:
    """Each failed in every worker's start-up with a traceback (exit 3; inf: an OverflowError), though
    it is known before any worker starts: one line and exit 2, as for any invalid setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env.update({"EMODRIFT_DATA_DIR": str(tmp_path / "data"), variable: value})
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--port", str(free_port()), "--workers", "2"],
                          env=env, capture_output=True, timeout=60, text=True)
    assert done.returncode == 2 and said in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "data").exists()  # nothing started


@pytest.mark.parametrize(("flag", "said"), [("--port=99999", "a TCP port is at most 65535"),
                                            ("--workers=0", "must be at least 1")])
def test_serve_refuses_a_port_or_workers_out_of_range(flag: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", flag])
    assert exited.value.code == 2 and said in capsys.readouterr().err


def test_a_killed_parent_takes_its_embedded_redis_with_it(tmp_path: Path) -> None:
    code = ("import sys, time; from service.embedded_redis import EmbeddedRedis; "
            f"r = EmbeddedRedis({str(tmp_path)!r}).start(); print(r.process.pid, flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no finally, no atexit
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/status").read_text()
        except FileNotFoundError:
            return
        if "State:\tZ" in state:  # exited, waiting for its (gone) parent's reaper
            return
        time.sleep(0.05)
    raise AssertionError("redis-server outlived the process that started it")


@pytest.mark.parametrize("cpu_max, cap", [("max 100000", None), ("150000 100000", 1), ("50000 100000", 1),
                                          ("800000 100000", 8), ("garbage", None)])
def test_available_cpus_follows_the_container_quota(tmp_path, cpu_max: str, cap: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path / "cpu.max") == (affinity if cap is None else min(affinity, cap))
    assert available_cpus(tmp_path / "missing") == affinity


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_healthz_fails_once_the_embedded_redis_has_died(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env["EMODRIFT_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        assert httpx.get(f"{url}/healthz").status_code == 200
        redis_pid = next(pid for pid in _children(proc.pid)
                         if "redis-server" in Path(f"/proc/{pid}/cmdline").read_text())
        os.kill(redis_pid, signal.SIGKILL)  # a crash: nothing restarts it
        deadline = time.monotonic() + 10
        while (health := httpx.get(f"{url}/healthz", timeout=2)).status_code == 200:
            assert time.monotonic() < deadline, "/healthz still 200 with the embedded Redis dead"
            time.sleep(0.1)
        assert health.status_code == 503 and health.json()["error"]["code"] == "embedded_redis_exited"
    finally:
        interrupt(proc, timeout=30)


@pytest.mark.slow
def test_a_killed_supervisor_takes_its_workers_with_it(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_REDIS")}
    env["EMODRIFT_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        descendants = _children(proc.pid)
        assert len(descendants) >= 3  # redis-server, uvicorn's workers (and multiprocessing's tracker)
    finally:
        proc.kill()  # SIGKILL: uvicorn's supervisor cannot stop its workers itself
        proc.wait()
    deadline = time.monotonic() + 15
    alive = descendants
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists()
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]]
    assert not alive, [Path(f"/proc/{pid}/cmdline").read_text() for pid in alive]


def test_serve_on_a_public_address_warns_while_the_public_url_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import preflight
    from service.config import Settings

    monkeypatch.delenv("EMODRIFT_PUBLIC_URL", raising=False)
    refusal, warnings = preflight(Settings(api_keys=["k"]), "0.0.0.0")
    assert refusal is None and len(warnings) == 1 and "EMODRIFT_PUBLIC_URL is unset" in warnings[0]
    assert preflight(Settings(api_keys=["k"]), "127.0.0.1") == (None, [])  # a laptop: the default is right
    assert "refusing" in (preflight(Settings(), "0.0.0.0")[0] or "")
    monkeypatch.setenv("EMODRIFT_PUBLIC_URL", "https://emodrift.example.com")  # set, even to anything: no warning
    assert preflight(Settings(api_keys=["k"]), "0.0.0.0") == (None, [])


def test_the_serve_command_prints_that_warning(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    # an unreachable Redis URL: nothing embedded is started, the warning comes before anything else
    env.update({"EMODRIFT_API_KEYS": "k", "EMODRIFT_REDIS_URL": "redis://127.0.0.1:1/0", "EMODRIFT_DATA_DIR": str(tmp_path)})
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()
        assert "EMODRIFT_PUBLIC_URL is unset" in first and '"level": "warning"' in first, first
    finally:
        interrupt(proc, timeout=30)


def test_an_unknown_emodrift_variable_is_named_with_the_nearest_setting() -> None:
    from service.config import unknown_variables

    # not settings, set by others: the timed tests' opt-in, Kubernetes' service links
    others = {"EMODRIFT_TIMING_TESTS": "1", "EMODRIFT_SERVICE_HOST": "10.0.0.1", "EMODRIFT_API_PORT_8000_TCP_ADDR": "10.0.0.1",
              "EMODRIFT_PORT": "tcp://10.0.0.1:8000", "EMODRIFT_REDIS_URL": "redis://r", "PATH": "/bin"}
    assert unknown_variables(others) == []
    assert unknown_variables({**others, "EMODRIFT_REDIS_TIMOUT_SECONDS": "5"}) == [
        "EMODRIFT_REDIS_TIMOUT_SECONDS is not a setting and is ignored; did you mean EMODRIFT_REDIS_TIMEOUT_SECONDS?"]


def test_serve_warns_once_of_a_misspelt_setting_and_refuses_an_invalid_one_in_a_line(tmp_path: Path) -> None:
    # the misspelling was silently ignored; a bad value was pydantic's 19-line traceback naming the field
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env.update({"EMODRIFT_REDIS_URL": "redis://127.0.0.1:1/0", "EMODRIFT_DATA_DIR": str(tmp_path),
                "EMODRIFT_REDIS_TIMOUT_SECONDS": "5"})
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(free_port())],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()
        assert "EMODRIFT_REDIS_TIMOUT_SECONDS is not a setting" in first and "EMODRIFT_REDIS_TIMEOUT_SECONDS?" in first, first
        assert '"level": "warning"' in first, first
    finally:
        interrupt(proc, timeout=30)
    env["EMODRIFT_REDIS_TIMEOUT_SECONDS"] = "0"
    refused = subprocess.run([sys.executable, "-m", "service.cli", "serve"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "EMODRIFT_REDIS_TIMEOUT_SECONDS: Input should be greater than 0" in refused.stderr, refused.stderr


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_export_batch_keys_must_be_a_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["timelines", "export", "--out", "t.jsonl.gz", "--batch-keys", value])
    assert exited.value.code == 2 and "--batch-keys" in capsys.readouterr().err
    parsed = build_parser().parse_args(["timelines", "export", "--out", "t.jsonl.gz", "--batch-keys", "7"])
    assert parsed.batch_keys == 7
