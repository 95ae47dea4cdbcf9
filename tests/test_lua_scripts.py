"""The Redis scripts (service/lua/): each file is held to its declaration in the registry (a header, a
named local for every key and argument, its statuses), each is registered once, and the registry
refuses a call by a wrong name or a reply it does not declare, against a real Redis."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from service import keys, lua
from service.calibration import LiveCalibration
from service.config import Settings
from service.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
LUA_DIR = ROOT / "service" / "lua"
FILES = sorted(LUA_DIR.glob("*.lua"))
SCRIPTS = sorted(lua.REGISTRY.values(), key=lambda script: script.name)

LOCAL = re.compile(r"^local (\w+) = (?:tonumber\()?(KEYS|ARGV)\[(\d+)\]\)?(?:\s+--.*)?$")
TAIL = re.compile(r"^local (\w+)_at = (\d+)$")
LITERAL_INDEX = re.compile(r"\b(KEYS|ARGV)\[\s*\d+\s*\]")
RETURN = re.compile(r"\breturn\b(.*)$")
STATUS = re.compile(r"^\s*\{?\s*'([a-z_]+)'")


def _parts(text: str) -> tuple[list[str], list[str], list[str]]:
    """(header comment lines, the locals block, the body) of a script file."""
    lines = text.splitlines()
    n = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    header, rest = lines[:n], lines[n:]
    m = next((i for i, line in enumerate(rest) if not line.strip()), len(rest))
    return header, rest[:m], rest[m:]


def _expected_locals(script: lua.Script) -> list[tuple[str, str, int]]:
    """(local name, KEYS|ARGV|tail, position) in the order the file must name them."""
    out = [(f"{name}_key", "KEYS", i) for i, name in enumerate(script.keys, 1)]
    if script.key_tail:
        out.append((script.key_tail, "tail", len(script.keys) + 1))
    out += [(name, "ARGV", i) for i, name in enumerate(script.args, 1)]
    if script.arg_tail:
        out.append((script.arg_tail, "tail", len(script.args) + 1))
    return out


def _declared_locals(block: list[str]) -> list[tuple[str, str, int]]:
    out = []
    for line in block:
        if m := LOCAL.match(line):
            out.append((m[1], m[2], int(m[3])))
        elif m := TAIL.match(line):
            out.append((m[1], "tail", int(m[2])))
        else:
            raise AssertionError(f"not a named key or argument: {line!r}")
    return out


def _top_level_returns(body: list[str]) -> list[str]:
    """What each `return` of the script itself gives back (local helper functions left out)."""
    out, inside = [], None
    for line in body:
        indent = len(line) - len(line.lstrip())
        if inside is None and re.match(r"^\s*local function\b", line):
            inside = indent
            continue
        if inside is not None:
            if line.strip() == "end" and indent == inside:
                inside = None
            continue
        code = line.split("--", 1)[0]
        if m := RETURN.search(code):
            out.append(m[1].strip())
    return out


def test_every_file_is_declared_once_and_every_declaration_has_its_file() -> None:
    assert [path.stem for path in FILES] == [script.name for script in SCRIPTS]
    constants = [value for value in vars(lua).values() if isinstance(value, lua.Script)]
    assert sorted(script.name for script in constants) == [script.name for script in SCRIPTS]  # one constant each
    with pytest.raises(ValueError, match="declared already"):
        lua.declare("alert_swap", keys=("alerts",), statuses=("ok",))


def test_every_script_is_registered_by_exactly_one_call_site() -> None:
    """Each script is bound (redis-py's register_script) in one place in service/: no script is loaded
    under two names, and none is dead."""
    source = "\n".join(path.read_text() for path in (ROOT / "service").rglob("*.py")
                       if path.parent != LUA_DIR)
    assert "register_script(" not in source, "a script outside the registry"
    for name, value in vars(lua).items():
        if isinstance(value, lua.Script):
            assert len(re.findall(rf"\blua\.{name}\.bind\(", source)) == 1, name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.name)
def test_the_file_has_a_header_and_names_its_keys_and_arguments(script: lua.Script) -> None:
    header, block, body = _parts(script.text)
    assert header and header[0].startswith(f"-- {script.name}: "), "the header opens with the script's name"
    prose = "\n".join(header)
    assert re.search(r"^-- KEYS\s", prose, re.M) and re.search(r"^-- ARGV\s", prose, re.M), "keys and arguments"
    assert re.search(r"^-- Returns\s", prose, re.M), "the replies"
    for name, kind, _ in _expected_locals(script):
        if kind != "tail":
            assert re.search(rf"^--\s+(KEYS|ARGV)?\s*{name}\s", prose, re.M), f"{name} is described"
    assert _declared_locals(block) == _expected_locals(script)
    text = "\n".join(body)
    assert not LITERAL_INDEX.search(text), "KEYS[n]/ARGV[n] past the named locals"
    if script.key_tail is None:
        assert "KEYS" not in text, "no variable keys declared"
    if script.arg_tail is None:
        assert "ARGV" not in text, "no variable arguments declared"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.name)
def test_the_script_answers_exactly_its_declared_statuses(script: lua.Script) -> None:
    _, _, body = _parts(script.text)
    returned = _top_level_returns(body)
    assert returned, "the script answers"
    statuses = []
    for value in returned:
        m = STATUS.match(value)
        assert m, f"not a string status: return {value}"
        statuses.append(m[1])
    assert sorted(set(statuses)) == sorted(script.statuses)


def test_every_script_loads_into_a_real_redis(redis_client: redis.Redis) -> None:
    for script in SCRIPTS:
        assert redis_client.script_load(script.text)  # compiles: a syntax error is a ResponseError


def test_a_call_by_a_wrong_name_fails_before_reaching_redis(redis_server: EmbeddedRedis,
                                                            redis_client: redis.Redis) -> None:
    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            swap = lua.ALERT_SWAP.bind(client)
            args = {"alert_id": "a", "expected": "x", "replacement": "y"}
            with pytest.raises(lua.ScriptCallError, match=r"missing \['alerts'\]"):
                await swap(keys={}, args=args)
            with pytest.raises(lua.ScriptCallError, match=r"unknown \['alert'\]"):
                await swap(keys={"alerts": "ed:{u}:alerts", "alert": "x"}, args=args)
            with pytest.raises(lua.ScriptCallError, match=r"missing \['replacement'\]"):
                await swap(keys={"alerts": "ed:{u}:alerts"}, args={"alert_id": "a", "expected": "x"})
            with pytest.raises(lua.ScriptCallError, match="no variable keys"):
                await swap(keys={"alerts": "ed:{u}:alerts"}, args=args, key_tail=["ed:{u}:more"])
            assert (await swap(keys={"alerts": "ed:{u}:alerts"}, args=args)).status == "missing"
        finally:
            await client.aclose()

    asyncio.run(body())
    # the user's keys only: the session's service shares this Redis and re-creates its outbox stream
    assert redis_client.keys("ed:{u}*") == []


def test_statuses_and_values_come_back_by_name(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            release = lua.OUTBOX_RELEASE.bind(client)
            await client.set("ed:lock", "mine")
            assert (await release(keys={"lock": "ed:lock"}, args={"token": "theirs"})).status == "stale"
            assert await client.get("ed:lock") == b"mine"
            assert (await release(keys={"lock": "ed:lock"}, args={"token": "mine"})).status == "ok"
            assert await client.get("ed:lock") is None

            window = lua.RATE_WINDOW.bind(client)
            await client.zadd("ed:w", {"old": 99_000_000, "a": 100_200_000, "b": 100_400_000})  # µs: one out of the second

            def at(now: str, member: str) -> dict[str, object]:
                return {"limit": 3, "now": now, "member": member, "ttl_milliseconds": 2000}
            counts = [await window(keys={"log": "ed:w"}, args=at("101.0", name)) for name in ("c", "d")]
            assert [(r.status, r.values) for r in counts] == [("ok", (3,)), ("refused", (3, b"100200000", b"101000000"))]
            assert await client.zcard("ed:w") == 3  # the refused one is not logged
            assert (await window(keys={"log": "ed:w"}, args=at("101.25", "e"))).status == "ok"  # 100.2 left the second
            # Redis's own clock when no time is given: scored in microseconds of TIME
            seconds, micros = await client.time()
            assert (await window(keys={"log": "ed:t"}, args=at("", "f"))).status == "ok"
            assert abs(await client.zscore("ed:t", "f") - (seconds * 1_000_000 + micros)) < 1_000_000

            store = lua.CALIBRATION_STORE.bind(client)
            assert (await store(keys={"scales": "ed:s"}, args={"expected": "", "scales": "v1"})).status == "ok"
            assert (await store(keys={"scales": "ed:s"}, args={"expected": "", "scales": "v2"})).status == "conflict"
            assert await client.get("ed:s") == b"v1"
        finally:
            await client.aclose()

    asyncio.run(body())


def test_a_status_the_script_does_not_declare_fails_loudly(redis_server: EmbeddedRedis) -> None:
    odd = lua.Script("odd", keys=(), args=("n",), statuses=("ok",), text="return {ARGV[1], 1}")

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            bound = odd.bind(client)
            assert await bound(keys={}, args={"n": "ok"}) == lua.Reply("ok", (1,))
            with pytest.raises(lua.ScriptReplyError, match="odd answered"):
                await bound(keys={}, args={"n": "surprise"})
        finally:
            await client.aclose()

    asyncio.run(body())


@pytest.mark.slow
def test_the_wheel_ships_every_script(tmp_path: Path) -> None:
    """The runtime images copy pyproject.toml, README.md and service/, then `pip install .` (Dockerfile):
    built from the same copy, the wheel carries every script as package data."""
    pytest.importorskip("setuptools")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("emodrift-*.whl"))
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("service/lua/")}
    assert shipped == {f"service/lua/{path.name}" for path in FILES} | {"service/lua/__init__.py"}


def test_every_status_is_in_the_documented_vocabulary() -> None:
    page = (ROOT / "docs" / "lua.md").read_text()
    table = page[page.index("## Status vocabulary"):page.index("## Adding a script")]
    documented = set(re.findall(r"`([a-z_]+)`", "\n".join(line.split("|")[1] for line in table.splitlines()
                                                             if line.startswith("| `"))))
    assert {status for script in SCRIPTS for status in script.statuses} == documented


def test_a_full_generation_of_calibration_counts_rotates_once(redis_server: EmbeddedRedis,
                                                              redis_client: redis.Redis) -> None:
    """calibration_rotate through the live calibration: the first replica to see the generation full
    moves on and the oldest counts go; a replica that saw the same generation finds it moved ('conflict')."""
    model = "temporal:4"
    settings = Settings(target_false_alarms_per_1000=0.5, calibration_min_posts=1000, calibration_generation_posts=1000)
    redis_client.hset(keys.calibration_counts(model, -1), "n:0", 5)  # the generation before: dropped by the rotation
    rotate_keys = {"meta": keys.calibration_meta(model), "previous_counts": keys.calibration_counts(model, -1),
                   "previous_alarms": keys.calibration_alarms(model, -1)}

    async def body() -> tuple[int, lua.Reply]:
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            live = LiveCalibration(client, model, settings)
            for _ in range(1000):
                live.record(500, None, False)
            await live.sync()
            late = await lua.CALIBRATION_ROTATE.bind(client)(keys=rotate_keys, args={"generation": 0})
            return live.generation, late
        finally:
            await client.aclose()

    generation, late = asyncio.run(body())
    assert generation == 1 and redis_client.hget(keys.calibration_meta(model), "gen") == b"1"
    assert not redis_client.exists(keys.calibration_counts(model, -1))
    assert late == lua.Reply("conflict", (b"1",))
