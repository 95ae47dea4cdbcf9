"""`make demo` (examples/demo.py) runs as a newcomer would run it: a real `emodrift serve` with its
embedded Redis, a real receiver, a drift, a verified webhook, and the timeline picture on disk."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.py"


def test_make_demo_shows_a_verified_drift_alert_and_writes_the_timeline(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(DEMO), "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "post photo-1 (examples/face.jpg): happy" in out and "face found: True" in out
    assert "signature verified" in out and "drift.started for demo-user" in out
    assert "before: mostly happy; after: mostly sad" in out
    webhook_id = out.split("webhook-id ")[1].split(",")[0]
    assert f"carries the alert {webhook_id} (drift.started)" in out  # the response and the webhook agree
    assert f"GET /v1/alerts/{webhook_id}: status open" in out  # and the alerts API keeps it under that id
    picture = tmp_path / "timeline-demo-user.svg"
    root = ET.fromstring(picture.read_bytes())
    assert root.tag.endswith("svg") and len(list(root.iter())) > 50


def test_the_demo_verifies_with_the_documented_code() -> None:
    spec = importlib.util.spec_from_file_location("emodrift_demo", DEMO)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert inspect.getsource(module.verify) in (ROOT / "docs" / "webhooks.md").read_text()
    assert "demo:" in (ROOT / "Makefile").read_text() and "examples/demo.py" in (ROOT / "Makefile").read_text()
