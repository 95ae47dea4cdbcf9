"""The README's first-five-minutes examples work as written: its curl lines are run, by bash and
curl, from the repository's root against the real service, and the response it shows has the shape
the service answers with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningService

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def block(marker: str, lang: str) -> str:
    """The README's first ```lang code block that contains ``marker``."""
    for code in re.findall(rf"```{lang}\n(.*?)```", README, re.S):
        if marker in code:
            return code
    raise AssertionError(f"no ```{lang} block with {marker!r} in the README")


def documents(text: str) -> list[Any]:
    """Every JSON document in ``text`` (curl -s prints the bodies back to back)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


def shape(value: Any) -> Any:
    return {k: shape(v) for k, v in value.items()} if isinstance(value, dict) else type(value).__name__


def test_the_quick_start_curl_lines_work(service: RunningService, client: httpx.Client) -> None:
    if not (shutil.which("curl") and shutil.which("base64")):
        if os.environ.get("CI"):
            pytest.fail("curl and base64 are needed to run the README's examples")
        pytest.skip("curl or base64 is not installed")
    script = block("examples/face.jpg", "bash").replace("http://127.0.0.1:8000", service.url)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    multipart, base64_json, user = documents(done.stdout)
    assert multipart["post_id"] == "p-1001" and multipart["created_at"] == "2026-11-25T10:00:00.000000Z"
    assert base64_json["post_id"] == "p-1002" and base64_json["drift"]["posts_seen"] == 2
    for post in (multipart, base64_json):
        assert post["emotion"]["label"] == "happy" and post["emotion"]["face_detected"], post
        assert post["emotion"]["probabilities"]["happy"] > 0.9
    assert user["user_id"] == "alice" and user["drift"]["posts_seen"] == 2

    shown = json.loads(block('"post_id": "p-1001"', "json"))
    assert shape(shown) == shape(multipart)  # the README's response is the service's shape
    assert shown["emotion"]["label"] == multipart["emotion"]["label"]


def test_the_old_json_path_still_takes_a_base64_post(client: httpx.Client) -> None:
    import base64

    face = base64.b64encode((ROOT / "examples" / "face.jpg").read_bytes()).decode()
    old = client.post("/v1/users/bob/posts", json={"post_id": "p-1", "image_base64": face})
    assert old.status_code == 200 and old.json()["emotion"]["label"] == "happy"
    new = client.post("/v1/users/bob/posts/base64", json={"post_id": "p-1", "image_base64": face})
    assert new.status_code == 200 and new.json()["duplicate"]  # the same post, by either path
    multipart_to_json = client.post("/v1/users/bob/posts/base64", files={"image": ("f.jpg", b"x")},
                                    data={"post_id": "p-2"})
    assert multipart_to_json.status_code == 415
    assert multipart_to_json.json()["error"]["code"] == "unsupported_media_type"
