"""The wrk driver of the load benchmark: its request file round-trips binary bodies byte for byte, its
parser reads a captured wrk run, and (when wrk is installed) a real one-second run against a small
HTTP server on 127.0.0.1 sends distinct requests and counts what the server counted."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.load import BOUNDARY, Workload, image_workload, multipart, observation_workload
from benchmarks.wrk_driver import (WorkloadExhausted, parse_wrk_output, raw_request, read_requests, to_phase,
                                   wrk_closed_loop, write_requests)

# stdout of a real `wrk -t2 -c2 -d1s --latency -s <the driver's script>` run (a server answering 500 to
# every 10th request): wrk's own summary, then the line done() prints
SAMPLE = """Running 1s test @ http://127.0.0.1:18766
  2 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    42.37ms    8.15ms  47.94ms   95.83%
    Req/Sec    22.86      4.63    30.00     71.43%
  Latency Distribution
     50%   43.97ms
     75%   44.03ms
     90%   44.06ms
     99%   47.94ms
  48 requests in 1.03s, 5.61KB read
  Non-2xx or 3xx responses: 5
Requests/sec:     46.71
Transfer/sec:      5.46KB

EMODRIFT_WRK {"requests": 48, "duration_us": 1027586, "bytes": 5741, "connect": 0, "read": 0, "write": 0, \
"status": 5, "timeout": 0, "p50_us": 43975.0, "p90_us": 44058.0, "p99_us": 47944.0, "max_us": 47944.0, \
"issued": 51, "overrun": 0}
"""

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")


def binary_body(i: int) -> bytes:
    # what could confuse a line- or text-based reader: CR LF, a lone LF, NUL, bytes >= 0x80, digits
    return b"%d\r\n\n\x00" % i + bytes(range(256)) + b"\r\n12\n"


def test_request_file_round_trips_binary_bodies(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8" + bytes(1000) + b"\xff\xd9"
    work = Workload(image_workload([binary_body(1), jpeg], ["u1", "u2", "u3"]).requests
                    + observation_workload(["u4", "u5"]).requests
                    + [("/v1/users/u6/posts", b"", "application/json")])
    path = tmp_path / "requests.bin"
    assert write_requests("http://127.0.0.1:8123", work, path) == len(work.requests)

    raws = read_requests(path)
    assert raws == [raw_request("127.0.0.1:8123", p, body, ctype) for p, body, ctype in work.requests]
    for raw, (target, body, ctype) in zip(raws, work.requests):
        head, sent = raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0] == f"POST {target} HTTP/1.1"
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert headers == {"Host": "127.0.0.1:8123", "Content-Type": ctype, "Content-Length": str(len(body)),
                           "Connection": "keep-alive"}
        assert sent == body
    assert BOUNDARY in raws[0].decode("latin-1") and binary_body(1) in raws[0]


def test_parser_reads_the_scripts_summary() -> None:
    summary = parse_wrk_output(SAMPLE)
    assert summary["requests"] == 48 and summary["status"] == 5 and summary["overrun"] == 0
    phase = to_phase(summary, "sample", provided=1000)
    assert (phase.ok, phase.errors, phase.client) == (43, {"non2xx": 5}, "wrk")
    assert phase.seconds == pytest.approx(1.027586)
    assert (phase.pct(50), phase.pct(90), phase.pct(99)) == pytest.approx((43.975, 44.058, 47.944))
    assert phase.rate == pytest.approx(43 / 1.027586)

    with pytest.raises(WorkloadExhausted):
        to_phase({**summary, "overrun": 3}, "sample", provided=40)
    with pytest.raises(ValueError):
        parse_wrk_output(SAMPLE.split("EMODRIFT_WRK")[0])


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200, or 500 on paths ending in /bad, and records every request it read."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the service
    disable_nagle_algorithm = True  # the header and body writes would otherwise wait for a delayed ACK
    seen: list[tuple[str, bytes]]
    lock: threading.Lock

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.seen.append((self.path, body))
        self.send_response(500 if self.path.endswith("/bad") else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    seen: list[tuple[str, bytes]] = []
    handler = type("Handler", (Recorder,), {"seen": seen, "lock": threading.Lock()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@needs_wrk
def test_real_run_sends_distinct_requests_and_counts_what_the_server_counted(recorder: tuple[str, list]) -> None:
    base, seen = recorder
    n, connections = 50_000, 2
    work = Workload([(f"/v1/users/u{i % 7}/posts" + ("/bad" if i % 10 == 0 else ""), binary_body(i),
                      "application/octet-stream") for i in range(n)])
    result = wrk_closed_loop(base, work, connections=connections, seconds=1, name="tiny", threads=2)

    sent = {body: path for path, body, _ in work.requests}
    bodies = [body for _, body in seen]
    assert len(bodies) > 50
    assert len(set(bodies)) == len(bodies), "a request was sent twice"
    assert all(sent.get(body) == path for path, body in seen), "a request arrived altered"
    ids = [int(body.split(b"\r\n", 1)[0]) for body in bodies]
    assert min(ids) < n // 2 <= max(ids), "both threads sent, each from its own half"

    # the server may have read requests whose answers wrk did not wait for: at most one per connection
    statuses = Counter(500 if path.endswith("/bad") else 200 for path, _ in seen)
    assert 0 <= statuses[200] - result.ok <= connections
    assert 0 <= statuses[500] - result.errors.get("non2xx", 0) <= connections
    assert statuses[500] > 0 and set(result.errors) <= {"non2xx"}
    assert result.seconds == pytest.approx(1, abs=0.5) and result.client == "wrk"
    assert 0 < result.pct(50) <= result.pct(99) and result.client_cpu_seconds > 0


@needs_wrk
def test_real_run_refuses_to_reuse_post_ids(recorder: tuple[str, list]) -> None:
    base, _ = recorder
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    work = Workload([(f"/v1/users/u{i}/posts", multipart(b"\xff\xd8", f"p{i}"), ctype) for i in range(5)])
    with pytest.raises(WorkloadExhausted):
        wrk_closed_loop(base, work, connections=1, seconds=1, name="too few")
