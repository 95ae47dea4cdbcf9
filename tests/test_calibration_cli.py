"""`emodrift calibration` as an operator runs it (a subprocess, a real redis-server): every expected
failure is one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from service import calibration_file, keys
from service.embedded_redis import EmbeddedRedis, free_port

MODEL = "temporal:4@0123456789"


def _cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EMODRIFT_REDIS_URL": redis_url}
    return subprocess.run([sys.executable, "-m", "service.cli", "calibration", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_missing_files_and_an_unreachable_redis_are_one_line(redis_server: EmbeddedRedis,
                                                               redis_client: redis.Redis, tmp_path: Path) -> None:
    _one_line_error(_cli(redis_server.url, "import", str(tmp_path / "missing.json")), "cannot read", "missing.json")
    _one_line_error(_cli(redis_server.url, "export", str(tmp_path / "no-dir" / "out.json")), "cannot write", "directory")
    (tmp_path / "bad.json").write_text("not json")
    _one_line_error(_cli(redis_server.url, "import", str(tmp_path / "bad.json")), "not an `emodrift calibration export`")
    away = f"redis://127.0.0.1:{free_port()}/0"
    _one_line_error(_cli(away, "export", str(tmp_path / "out.json")), "did not answer", "EMODRIFT_REDIS_URL")
    assert not (tmp_path / "out.json").exists()


def test_model_after_the_action_and_unknown_names(redis_server: EmbeddedRedis, redis_client: redis.Redis,
                                                   tmp_path: Path) -> None:
    redis_client.hset(keys.calibration_counts(MODEL, 0), mapping={"n:0": 7})
    redis_client.hset(keys.calibration_meta(MODEL), "gen", 0)
    assert calibration_file.stored_names(redis_client) == [MODEL]
    out = tmp_path / "out.json"
    result = _cli(redis_server.url, "export", "--model", MODEL, str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["counts"] == {"0": {"n:0": 7}}
    for args in (("--model", "nope", "export", str(tmp_path / "x.json")), ("export", "--model", "nope")):
        _one_line_error(_cli(redis_server.url, *args), "no live calibration named nope", MODEL, "live_calibration.name")
    assert not (tmp_path / "x.json").exists()


def test_an_import_without_scales_says_what_it_imported(redis_server: EmbeddedRedis, redis_client: redis.Redis,
                                                         tmp_path: Path) -> None:
    redis_client.hset(keys.calibration_counts(MODEL, 0), mapping={"n:0": 7, "a:0": 1})
    path = tmp_path / "export.json"
    assert _cli(redis_server.url, "--model", MODEL, "export", str(path)).returncode == 0
    assert json.loads(path.read_text())["scales"] is None
    result = _cli(redis_server.url, "import", str(path), "--model", MODEL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"imported 2 counters of {MODEL}; the export holds no scales")
    assert "the scales of" not in result.stdout
