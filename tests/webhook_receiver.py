"""A real webhook receiver on 127.0.0.1 for the tests: verifies every signature with the standard
library only (docs/webhooks.md's code), answers from a script of responses, and records everything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


# --- docs/webhooks.md's verifier, verbatim ------------------------------------------------------
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
# --------------------------------------------------------------------------------------------------


@dataclass
class Received:
    webhook_id: str
    timestamp: int
    body: bytes
    signature: str
    status: int  # what we answered
    verified: bool
    at: float  # time.monotonic()
    wall: float = field(default_factory=time.time)  # to compare with a lease kept in Redis as epoch seconds

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``script`` is consumed one answer per request: an int status or (status, headers); after it runs
    out, every request gets ``default``. A request whose signature does not verify gets 400 and is kept
    apart in ``strays``: it neither takes a scripted answer nor counts as an attempt."""

    secret: str = ""
    script: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    default: int = 200
    fail_first_per_id: int = 0  # answer 500 to the first N deliveries of each webhook-id
    hold_seconds: float = 0.0  # answer slowly (to have an attempt in flight)
    received: list[Received] = field(default_factory=list)  # signed with ``secret``
    strays: list[Received] = field(default_factory=list)  # anything else (answered 400)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verify(receiver.secret, headers, body)
                    verified = True
                except (KeyError, ValueError):
                    verified = False
                with receiver._lock:
                    seen = sum(1 for r in receiver.received if r.webhook_id == headers.get("webhook-id"))
                    if not verified:
                        # not signed with our secret: another test's dispatcher still retrying to a port the
                        # OS has since handed to us; it must not take a scripted answer or count as an attempt
                        answer: int | tuple[int, dict[str, str]] = 400
                    elif seen < receiver.fail_first_per_id:
                        answer = 500
                    else:
                        answer = receiver.script.pop(0) if receiver.script else receiver.default
                    status, extra = answer if isinstance(answer, tuple) else (answer, {})
                    (receiver.received if verified else receiver.strays).append(
                        Received(headers.get("webhook-id", ""), int(headers.get("webhook-timestamp", "0")), body,
                                 headers.get("webhook-signature", ""), status, verified, time.monotonic()))
                if receiver.hold_seconds:
                    time.sleep(receiver.hold_seconds)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def set(self, *, default: int | None = None, script: list[Any] | None = None) -> None:
        with self._lock:
            if default is not None:
                self.default = default
            if script is not None:
                self.script = list(script)

    def successes(self) -> Counter[str]:
        """webhook-id -> how many times we answered 2xx to a verified delivery of it."""
        with self._lock:
            return Counter(r.webhook_id for r in self.received if r.verified and 200 <= r.status < 300)

    def attempts(self, webhook_id: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if webhook_id is None or r.webhook_id == webhook_id]
