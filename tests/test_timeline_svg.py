"""The per-user picture: well-formed SVG with one point per post and the alert markers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from service import timeline_svg
from service.embedded_redis import EmbeddedRedis
from tests.conftest import start_service
from tests.constants import HAPPY, SAD

NS = {"svg": "http://www.w3.org/2000/svg"}


@pytest.fixture
def client(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[httpx.Client]:
    """A service of its own with live calibration off: the bar it draws is the manifest's threshold under
    the score profile alone (on the shared service, earlier tests' traffic had moved the live scale)."""
    running = start_service(redis_url=redis_server.url, data_dir=Path("/nonexistent"), live_calibration=False)
    try:
        with running.client() as http:
            yield http
    finally:
        running.stop()


def test_timeline_svg_shows_every_post_and_the_alert(client: httpx.Client) -> None:
    alerts = []
    for i in range(70):
        body = client.post("/v1/users/pic/observations", json={
            "post_id": f"p{i}", "probabilities": HAPPY if i < 30 or i >= 55 else SAD,
            "created_at": f"2026-11-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"}).json()
        if body["alert"]:
            alerts.append((i, body["alert"]))
    assert alerts and alerts[0][1]["timeline_url"].endswith("/v1/users/pic/timeline.svg")

    response = client.get("/v1/users/pic/timeline.svg")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)  # well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    for name in ("valence", "score"):
        line = root.find(f".//svg:polyline[@id='{name}']", NS)
        assert line is not None and len(line.attrib["points"].split()) == 70
    markers = root.findall(".//svg:g[@id='alerts']/svg:line", NS)
    assert [m.attrib["class"] for m in markers] == [f"alert {a['type']}" for _, a in alerts]
    # the valence line goes down during the sad posts: y grows downwards in SVG
    ys = [float(p.split(",")[1]) for p in root.find(".//svg:polyline[@id='valence']", NS).attrib["points"].split()]
    assert min(ys[30:55]) > max(ys[:30])
    # the fast rule's bar at each post: the model's threshold, raised where its score profile runs high
    # (a line at the threshold showed posts above it and no alert: an analyst read a missed alarm)
    top = timeline_svg.TOP + timeline_svg.BAND + timeline_svg.GAP + timeline_svg.VAL + timeline_svg.GAP
    bar = [1 - (float(p.split(",")[1]) - top) / timeline_svg.SCORE
           for p in root.find(".//svg:polyline[@id='bar']", NS).attrib["points"].split()]
    threshold = client.get("/v1/model").json()["detector"]["threshold"]
    assert len(bar) == 70 and min(bar) >= threshold - 0.01 and max(bar) > threshold + 0.005, (threshold, bar)
    assert client.get("/v1/users/nobody/timeline.svg").status_code == 404
    last10 = ET.fromstring(client.get("/v1/users/pic/timeline.svg", params={"limit": 10}).content)
    for name in ("valence", "score"):
        assert len(last10.find(f".//svg:polyline[@id='{name}']", NS).attrib["points"].split()) == 10


def test_the_alerts_label_stays_inside_the_picture_at_its_right_edge() -> None:
    """A fresh alert is the user's latest post: its label started at its line and ran off the picture
    ("this alert (drift.starte": a re-audit). Near the right edge it ends at the line instead."""
    posts = [{"created_at": f"2026-11-01T00:{i:02d}:00Z", "post_id": f"p{i}", "drift": {"score": 0.1},
              "emotion": {"probabilities": {"happy": 1.0}}, "alert": None} for i in range(48)]
    posts[-1]["alert"] = {"id": "evt_1", "type": "drift.started"}
    svg = timeline_svg.render("u", posts, [0.9] * len(posts), highlight="evt_1")
    label = re.search(r'<text ([^>]*)>this alert \(drift.started\)</text>', svg)
    assert label and 'text-anchor="end"' in label[1], svg[-600:]
    x = float(re.search(r'x="([\d.]+)"', label[1])[1])  # type: ignore[index]
    assert x <= timeline_svg.WIDTH


def test_each_way_an_episode_ends_has_its_own_marker_colour() -> None:
    """A new baseline and a newly served model's end were drawn in the green of a recovery, read as "back"
    while the user stayed changed (a reviewer's audit and its re-audit)."""
    posts = [{"created_at": f"2026-11-01T00:{i:02d}:00Z", "post_id": f"p{i}", "drift": {"score": 0.1},
              "emotion": {"probabilities": {"happy": 1.0}}, "alert": None} for i in range(8)]
    ends = {2: "recovered", 4: "new_baseline", 6: "model_changed"}
    posts[1]["alert"] = {"id": "evt_s", "type": "drift.started"}
    for i, resolution in ends.items():
        posts[i]["alert"] = {"id": f"evt_{i}", "type": "drift.ended", "resolution": resolution}
    colours = re.findall(r'<line class="alert [^"]*"[^>]*stroke="(#\w+)"', timeline_svg.render("u", posts, [0.9] * 8))
    assert len(colours) == 4 and len(set(colours)) == 4, colours  # started, back, new baseline, model: one each
