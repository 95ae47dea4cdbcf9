"""`make demo`: see a drift happen, end to end, on this machine, in seconds.

It starts the service (`emodrift serve`, with its embedded Redis, in a temporary directory), a webhook
receiver on 127.0.0.1, subscribes the receiver, posts a user's photo (examples/face.jpg) and then a
mood that changes (40 happy observations, then sad ones) until the service raises `drift.started`,
verifies the signed webhook with the standard-library code of docs/webhooks.md, reads the alert back from
`GET /v1/alerts/{id}`, writes the user's timeline picture, and stops everything it started.

    python examples/demo.py [--out DIR] [--port PORT]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "examples" / "face.jpg"
USER = "demo-user"
HAPPY = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.03, "surprise": 0.04, "neutral": 0.03}
SAD = {"angry": 0.08, "disgust": 0.02, "fear": 0.1, "happy": 0.02, "sad": 0.7, "surprise": 0.01, "neutral": 0.07}


# --- docs/webhooks.md's verifier, verbatim (tests/test_demo.py checks it still is) --------------
def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> dict:
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(ts)) > tolerance:
        raise ValueError("timestamp outside tolerance")  # refuse replays of old messages
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    if not any(hmac.compare_digest(expected, sig) for sig in headers["webhook-signature"].split()):
        raise ValueError("bad signature")
    return json.loads(body)
# ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_receiver() -> tuple[ThreadingHTTPServer, "queue.Queue[tuple[dict[str, str], bytes]]"]:
    """A webhook receiver on 127.0.0.1: every POST goes into the queue, answered 200."""
    inbox: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            inbox.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, inbox


def start_service(port: int, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env.update({"EMODRIFT_DATA_DIR": str(data_dir), "EMODRIFT_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "EMODRIFT_WEBHOOK_ALLOW_PRIVATE_URLS": "true",  # the receiver is on 127.0.0.1
                "EMODRIFT_LOG_FORMAT": "text"})
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(http: httpx.Client, service: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise RuntimeError(f"the service exited with {service.returncode}")
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the service did not become ready")


def call(response: httpx.Response, expected: int = 200) -> Any:
    if response.status_code != expected:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")
    return response.json() if response.content else None


def demo(http: httpx.Client, inbox: "queue.Queue[tuple[dict[str, str], bytes]]", receiver_url: str, out: Path) -> None:
    sub = call(http.post("/v1/webhooks", json={"url": receiver_url, "events": ["drift.started", "drift.ended"]}), 201)
    print(f"subscribed {receiver_url} as {sub['id']}; secret {sub['secret'][:12]}… (shown once)")

    with FACE.open("rb") as image:
        first = call(http.post(f"/v1/users/{USER}/posts", files={"image": ("face.jpg", image, "image/jpeg")},
                               data={"post_id": "photo-1"}))
    print(f"post photo-1 (examples/face.jpg): {first['emotion']['label']} "
          f"(p={first['emotion']['probabilities'][first['emotion']['label']]:.2f}, face found: "
          f"{first['emotion']['face_detected']}), drift {first['drift']['status']}")

    alert = None
    for i in range(2, 130):
        mood = HAPPY if i <= 40 else SAD
        result = call(http.post(f"/v1/users/{USER}/observations", json={"post_id": f"post-{i}", "probabilities": mood}))
        if i % 10 == 0 or result["alert"]:
            print(f"post-{i:<3} {'happy' if mood is HAPPY else 'sad':5}  score {result['drift']['score']:.2f}  "
                  f"{result['drift']['status']}")
        if result["alert"]:
            alert = result["alert"]
            break
    if alert is None:
        raise RuntimeError("no drift alert after 130 posts")
    print(f"\nthe response to post-{i} carries the alert {alert['id']} ({alert['type']})")

    headers, body = inbox.get(timeout=30)
    payload = verify(sub["secret"], headers, body)
    print(f"\nwebhook received: webhook-id {headers['webhook-id']}, signature verified "
          f"({len(body)} bytes, {headers['webhook-signature'][:20]}…)")
    data = payload["data"]
    print(f"  {payload['type']} for {data['user_id']}: score {data['score']:.2f} after {data['posts_seen']} posts")
    print(f"  before: mostly {data['before']['dominant']}; after: mostly {data['after']['dominant']}; "
          f"valence change {data['valence_change']:+.2f}")
    print(f"  evidence posts: {', '.join(data['evidence_post_ids'][-5:])}")
    print(f"  timeline: {data['timeline_url']}")

    # the same alert, as the alerts API keeps it: its id is the webhook-id
    stored = call(http.get(f"/v1/alerts/{headers['webhook-id']}"))
    print(f"\nGET /v1/alerts/{stored['id']}: status {stored['status']}, created {stored['created_at']}")
    print(json.dumps({k: stored[k] for k in ("id", "type", "user_id", "status", "score", "valence_change",
                                              "backfill", "verdict")}, indent=2))
    print("acknowledge it with POST /v1/alerts/{id}/acknowledge, judge it with POST /v1/alerts/{id}/resolve")

    svg = http.get(f"/v1/users/{USER}/timeline.svg")
    if svg.status_code != 200:
        raise RuntimeError(f"timeline.svg: {svg.status_code}")
    out.mkdir(parents=True, exist_ok=True)
    picture = out / f"timeline-{USER}.svg"
    picture.write_bytes(svg.content)
    print(f"\nwrote {picture} (open it in a browser)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "demo-output", help="where the timeline picture goes")
    parser.add_argument("--port", type=int, default=0, help="the service's port (default: a free one)")
    args = parser.parse_args(argv)
    port = args.port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="emodrift-demo-"))
    receiver, inbox = start_receiver()
    print(f"starting emodrift on http://127.0.0.1:{port} (embedded Redis in {workdir}) …")
    service = start_service(port, workdir / "data", workdir / "service.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            wait_ready(http, service)
            demo(http, inbox, f"http://127.0.0.1:{receiver.server_address[1]}/emodrift-webhook", args.out)
        return 0
    except Exception as exc:  # noqa: BLE001 - said plainly, with the service's log
        print(f"demo failed: {exc}\n--- service log ---\n{(workdir / 'service.log').read_text(errors='replace')}",
              file=sys.stderr)
        return 1
    finally:
        service.send_signal(signal.SIGINT)  # a graceful stop: the embedded Redis goes with it
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
        receiver.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
