"""`emodrift calibration` as an operator runs it (a subprocess, a real redis-server): every expected
failure is one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from service import calibration, calibration_file, keys, model_repository
from service.config import Settings
from service.embedded_redis import EmbeddedRedis, free_port

MODEL = "temporal:4@0123456789"


def _cli(redis_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EMODRIFT_REDIS_URL": redis_url, **(env or {})}
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
    redis_client.hset(keys.calibration_counts(MODEL, 0), mapping={"n:0": 7})
    _one_line_error(_cli(redis_server.url, "export", "--model", MODEL, str(tmp_path / "no-dir" / "out.json")),
                    "cannot write", "directory")
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


def _export(**changes: object) -> dict[str, object]:
    """A valid export of MODEL (as `export` writes it), with ``changes`` on top."""
    scales = {"model": MODEL, "target_false_alarms_per_1000": 0.5,
              "buckets": {"64-127": {"scale": 1.2, "source": "live", "at_posts": 30_000, "at_alarms": 12}}}
    return {"format": "emodrift-live-calibration/1", "model": MODEL, "generation": 1, "scales": scales,
            "counts": {"0": {"n:3": 20_000, "a:3": 9, "u:3:12": 40}, "1": {"n:3": 10_000, "d:3:4": 2}}, **changes}


def _bucket(**entry: object) -> dict[str, object]:
    return {"model": MODEL, "target_false_alarms_per_1000": 0.5, "buckets": {"64-127": entry}}


MALFORMED = {  # the field each is refused for, and the file
    "scales.buckets.64-127.at_posts": _export(scales=_bucket(scale=1.2, source="live", at_posts="abc")),
    "scales.buckets.64-127.scale": _export(scales=_bucket(scale=True, source="live")),
    "counts.1.n:3": _export(counts={"1": {"n:3": -5}}),
    "generation": _export(generation=-7),
    "unknown age bucket '64-128'": _export(scales={**_bucket(), "buckets": {"64-128": {"scale": 1.2, "source": "live"}}}),
    "scales: Input should be an object, got [1.2]": _export(scales=[1.2]),
    "scales: Input should be an object, got '1.2'": _export(scales="1.2"),
    "scales.buckets.64-127.scale: Field required": _export(scales=_bucket(source="live")),
    "scales.buckets.64-127: Input should be an object": _export(scales={**_bucket(), "buckets": {"64-127": 3}}),
    "counts: Input should be an object": _export(counts=[{"n:3": 1}]),
    "counts.1.x:3": _export(counts={"1": {"x:3": 1}}),
    "counts.1.u:3:41": _export(counts={"1": {"u:3:41": 1}}),
    "counts.5": _export(counts={"5": {"n:3": 1}}),
    "scales.buckets.64-127.scale: Input should be less than or equal to 3": _export(scales=_bucket(scale=3.5, source="live")),
    "scales.buckets.64-127.source": _export(scales=_bucket(scale=1.2, source="borrowed")),
    "scales.model": _export(scales={**_bucket(scale=1.2, source="live"), "model": "temporal:3@0123456789"}),
}


def test_an_import_that_does_not_fit_its_format_is_one_line_naming_the_field_and_writes_nothing(
        redis_server: EmbeddedRedis, redis_client: redis.Redis, tmp_path: Path) -> None:
    """Every one of these was imported (exit 0) and then failed every replica's sync, or ended in a
    traceback: validated whole first, each is refused before anything reaches Redis."""
    redis_client.hset(keys.calibration_counts(MODEL, 0), mapping={"n:0": 7})
    redis_client.hset(keys.calibration_meta(MODEL), "gen", 0)
    def calibration_keys() -> dict[bytes, bytes | None]:  # the session's service shares this Redis, its own model's keys
        return {key: redis_client.dump(key) for key in redis_client.keys("*") if keys.calibration_of(key.decode()) == MODEL}

    before = calibration_keys()
    assert len(before) == 2
    path = tmp_path / "export.json"
    for field_named, export in MALFORMED.items():
        path.write_text(json.dumps(export))
        result = _cli(redis_server.url, "--model", MODEL, "import", str(path))
        _one_line_error(result, "nothing was imported", field_named)
        assert calibration_keys() == before, field_named
    path.write_text("\ufeff" + json.dumps(_export()), encoding="utf-8")  # well formed (a BOM aside), imported and served
    result = _cli(redis_server.url, "--model", MODEL, "import", str(path))
    assert result.returncode == 0, result.stderr
    stored = calibration.StoredScales.model_validate_json(redis_client.get(keys.calibration_scales(MODEL)))
    assert stored.buckets["64-127"] == calibration.ScaleEntry(scale=1.2, source="imported", at_posts=30_000, at_alarms=12)


def test_an_export_without_model_is_refused_when_this_shells_default_is_not_in_redis(
        redis_server: EmbeddedRedis, redis_client: redis.Redis, tmp_path: Path) -> None:
    """The default name is computed from this shell's settings; with an override the service does not have
    (here EMODRIFT_COOLDOWN_POSTS) it named a calibration Redis does not hold, and the export wrote an
    empty backup, exit 0, where the AlarmRateJump runbook takes it before freezing."""
    artifact = model_repository.load(Path("model_repository"), "temporal")
    served = calibration.learned_under(artifact.tag, calibration.served_config(artifact.manifest, Settings()))
    redis_client.hset(keys.calibration_counts(served, 0), mapping={"n:0": 7})
    redis_client.hset(keys.calibration_meta(served), "gen", 0)
    out = tmp_path / "backup.json"
    result = _cli(redis_server.url, "export", str(out), env={"EMODRIFT_COOLDOWN_POSTS": "7"})
    _one_line_error(result, "no live calibration named temporal:", "this shell's", served, "--model")
    assert not out.exists()
    result = _cli(redis_server.url, "export", str(out))  # the service's settings: its calibration
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["counts"] == {"0": {"n:0": 7}}


def test_an_import_replaces_every_generation_and_the_replicas_move_to_it(
        redis_server: EmbeddedRedis, redis_client: redis.Redis, tmp_path: Path) -> None:
    """Exported at generation 1, traffic on to generation 6, imported: the import deleted only generations
    0 and 1 and set the generation back to 1; generations 5 and 6 stayed (no TTL), replicas went on adding
    to their generation 6, and both came back once the numbers reached them."""
    import asyncio

    import redis.asyncio as aioredis

    settings = Settings(calibration_generation_posts=1000, calibration_min_posts=1000)
    bucket = calibration.age_bucket(500)
    path = tmp_path / "export.json"

    def gen_keys() -> set[bytes]:
        return set(redis_client.keys(f"{keys.CALIBRATION}:{MODEL}:gen:*"))

    async def traffic(live: calibration.LiveCalibration, posts: int, sync: bool = True) -> None:
        for i in range(posts):
            live.record(500, None, i % 250 == 0)
        if sync:
            await live.sync()

    async def scenario() -> tuple[int, dict[str, Any]]:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            live = calibration.LiveCalibration(client, MODEL, settings)
            await traffic(live, 1000)  # generation 0 full: on to 1
            await traffic(live, 300)
            assert live.generation == 1
            assert _cli(redis_server.url, "--model", MODEL, "export", str(path)).returncode == 0
            for _ in range(5):
                await traffic(live, 1000)
            assert live.generation == 6
            await traffic(live, 40, sync=False)  # counted before the import, sent after it
            result = _cli(redis_server.url, "--model", MODEL, "import", str(path))
            assert result.returncode == 0, result.stderr
            await live.sync()  # its 40 posts were of the generations the import replaced: dropped
            return live.generation, calibration_file.export_state(redis_client, MODEL)
        finally:
            await client.aclose()

    generation, restored = asyncio.run(scenario())
    exported = json.loads(path.read_text())
    assert gen_keys() == {keys.calibration_counts(MODEL, g).encode() for g in (7, 8)}  # the export's two, alone
    assert exported["generation"] == 1 and generation == restored["generation"] == 8  # above the 6 in use
    assert restored["counts"] == {"7": exported["counts"]["0"], "8": exported["counts"]["1"]}
    assert int(restored["counts"]["8"][f"n:{bucket}"]) == 300

    async def later() -> None:  # traffic goes on from the imported generation
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            live = calibration.LiveCalibration(client, MODEL, settings)
            await live.sync()
            await traffic(live, 1000)
            assert live.generation == 9
            await traffic(live, 10)
        finally:
            await client.aclose()

    asyncio.run(later())
    assert gen_keys() == {keys.calibration_counts(MODEL, g).encode() for g in (8, 9)}
    assert int(redis_client.hget(keys.calibration_counts(MODEL, 8), f"n:{bucket}")) == 1300
    assert redis_client.hgetall(keys.calibration_counts(MODEL, 9)) == {f"n:{bucket}".encode(): b"10",
                                                                     f"a:{bucket}".encode(): b"1"}
