"""Hostile and broken input: each gets a precise 4xx JSON error and changes nothing in Redis.

A user ("victim") is seeded with one post before every test; after the bad requests every key in
Redis must hold exactly what it held before (compared with DUMP), so a refused request can neither
advance an existing user nor create a new one. Image formats that are fine are accepted.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import time
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from service import keys
from service.images import DECODE_BYTES
from service.embedded_redis import EmbeddedRedis
from tests import image_fixtures as img
from tests.conftest import RunningService, read_state, start_service
from tests.constants import HAPPY

MAX_IMAGE_BYTES = 256 * 1024
MULTIPART_LIMIT = MAX_IMAGE_BYTES + 64 * 1024  # service/routes/posts.py: MULTIPART_OVERHEAD


@pytest.fixture(scope="module")
def hostile_service(redis_server: EmbeddedRedis) -> Iterator[RunningService]:
    running = start_service(redis_url=redis_server.url, max_image_bytes=MAX_IMAGE_BYTES)
    yield running
    running.stop()


def snapshot(r: redis.Redis) -> dict[bytes, object]:
    """Every user key, byte for byte, and the number of alert events (the webhook dispatchers of
    running services re-create the outbox stream and its consumer group on their own, and their
    outbox sweepers take the relay's lock every few seconds, and their live calibration syncs the posts
    judged before: none is a request's doing)."""
    own = (b"ed:{wh}", keys.relay_lock().encode())
    users = {key: r.dump(key) for key in sorted(r.keys("ed:{*"))
             if not key.startswith(own) and keys.calibration_of(key.decode()) is None}
    return {**users, b"outbox events": r.xlen("ed:outbox")}


@pytest.fixture
def http(hostile_service: RunningService, redis_client: redis.Redis) -> Iterator[httpx.Client]:
    """A client, with "victim" holding one post; on teardown Redis must be exactly as seeded."""
    with hostile_service.client() as client:
        seeded = client.post("/v1/users/victim/observations", json={"post_id": "seed", "probabilities": HAPPY})
        assert seeded.status_code == 200, seeded.text
        before = snapshot(redis_client)
        yield client
        assert snapshot(redis_client) == before, "a refused request changed Redis"
        assert read_state(redis_client, "victim").version == 1


def expect(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return error


def multipart(client: httpx.Client, data: bytes, user: str = "victim", **fields: str) -> httpx.Response:
    return client.post(f"/v1/users/{user}/posts", files={"image": ("p", data, "application/octet-stream")},
                       data={"post_id": "new-post", **fields})


def observation(client: httpx.Client, user: str = "victim", **body: object) -> httpx.Response:
    return client.post(f"/v1/users/{user}/observations", json={"post_id": "new-post", "probabilities": HAPPY, **body})


def gif_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A 35-byte GIF whose screen and frame claim 65535x65535 pixels (4.3 G) with one pixel of data."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return screen + frame + b"\x02\x02\x44\x01\x00" + b"\x3b"


# --- the image upload --------------------------------------------------------------------------

def test_empty_bodies(http: httpx.Client) -> None:
    expect(multipart(http, b""), 415, "unsupported_image")  # an empty file is no image
    expect(http.post("/v1/users/victim/posts", content=b"", headers={"content-type": "application/json"}),
           400, "bad_request")
    expect(http.post("/v1/users/victim/posts", content=b"",
                     headers={"content-type": "multipart/form-data; boundary=x"}), 422, "validation_error")
    expect(http.post("/v1/users/victim/posts", content=b""), 415, "unsupported_media_type")  # no content type
    expect(http.post("/v1/users/victim/observations", content=b"", headers={"content-type": "application/json"}),
           400, "bad_request")
    expect(http.post("/v1/posts/batch", content=b"", headers={"content-type": "application/json"}),
           400, "bad_request")


def test_not_an_image_truncated_and_bombs(http: httpx.Client) -> None:
    expect(multipart(http, img.not_an_image()), 415, "unsupported_image")
    expect(multipart(http, b"<svg xmlns='http://www.w3.org/2000/svg'/>"), 415, "unsupported_image")
    expect(multipart(http, img.corrupt_jpeg()), 422, "corrupt_image")
    expect(multipart(http, img.encode(img.astronaut(256), "PNG")[:5000]), 422, "corrupt_image")
    started = time.monotonic()
    expect(multipart(http, img.huge_dimensions_png()), 413, "image_too_large")  # 900 M pixels in ~100 B
    expect(multipart(http, gif_bomb()), 413, "image_too_large")
    # 64 M pixels: over our limit (40 M) but under Pillow's own bomb guard, which would let it decode
    expect(multipart(http, img.huge_dimensions_png(8000, 8000)), 413, "image_too_large")
    expect(multipart(http, gif_bomb(8000, 8000)), 413, "image_too_large")
    assert time.monotonic() - started < 2.0, "a bomb was decoded instead of refused from its header"


def test_image_errors_name_the_problem_and_our_limit_not_pillows(hostile_service: RunningService, http: httpx.Client) -> None:
    # a 0x0 PNG and a JPEG of height 0 answered "cannot identify image file <_io.BytesIO object at 0x7f...>";
    # a 65535x65535 header Pillow's "exceeds limit of 178956970 pixels, could be decompression bomb DOS attack"
    for data in (img.huge_dimensions_png(0, 0), img.jpeg_claiming(512, 0)):
        error = expect(multipart(http, data), 422, "corrupt_image")
        assert " at 0x" not in error["message"] and "BytesIO" not in error["message"], error
        assert "width or height of 0" in error["message"], error
    limit = hostile_service.settings.max_image_pixels
    for data in (img.huge_dimensions_png(), gif_bomb()):
        error = expect(multipart(http, data), 413, "image_too_large")
        assert f"the limit is {limit}" in error["message"] and "decompression bomb" not in error["message"], error
        assert "178956970" not in error["message"], error
    # a JPEG's header is bounded by Pillow's guard alone (its reduced decode is counted against our limit)
    error = expect(multipart(http, img.jpeg_claiming(65535, 65535)), 413, "image_too_large")
    assert "the limit is 178956970 for a JPEG" in error["message"] and "decompression bomb" not in error["message"]
    assert f"EMODRIFT_MAX_IMAGE_PIXELS, {limit}" in error["message"], error


def test_the_service_bounds_libjpegs_memory_by_its_pixel_limit(hostile_service: RunningService) -> None:
    """JPEGMEM, read by libjpeg at each decode, is set from the pixel limit when the service starts: the
    backstop behind the JPEG walk (tests/test_images.py shows what it holds)."""
    assert int(os.environ["JPEGMEM"]) * 1000 >= DECODE_BYTES * hostile_service.settings.max_image_pixels


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "JPEG"])
def test_every_allowed_format_is_accepted(fmt: str, hostile_service: RunningService, redis_client: redis.Redis) -> None:
    with hostile_service.client() as client:
        response = multipart(client, img.encode(img.astronaut(256), fmt), user=f"fmt-{fmt}")
    assert response.status_code == 200, response.text
    assert response.json()["drift"]["posts_seen"] == 1
    assert read_state(redis_client, f"fmt-{fmt}").version == 1


@pytest.mark.parametrize("form", ["wrapped", "data_url"])
def test_base64_wrapped_in_lines_or_in_a_data_url_is_taken(form: str, hostile_service: RunningService,
                                                         redis_client: redis.Redis) -> None:
    # `base64 face.jpg` wraps at 76 columns; FileReader.readAsDataURL prefixes data:image/jpeg;base64,
    face = img.face_jpeg(size=128)
    text = base64.encodebytes(face).decode() if form == "wrapped" else "data:image/jpeg;base64," + base64.b64encode(face).decode()
    with hostile_service.client() as client:
        single = client.post(f"/v1/users/b64-{form}/posts/base64", json={"post_id": "p1", "image_base64": text})
        batch = client.post("/v1/posts/batch", json={"items": [{"user_id": f"b64-{form}", "post_id": "p2", "image_base64": text}]})
    assert single.status_code == 200, single.text
    assert "error" not in batch.json()["results"][0], batch.text
    assert read_state(redis_client, f"b64-{form}").version == 2


@pytest.mark.parametrize("text,why", [
    (base64.urlsafe_b64encode(b"\xfb\xff" * 30).decode(), "URL-safe alphabet"),
    (base64.b64encode(b"abcd").decode().rstrip("="), "padding missing"),
    ("data:image/jpeg," + base64.b64encode(b"abc").decode(), "without ';base64,'"),
    ("QUJD*REVG", "'*' at character 4"),
])
def test_base64_that_is_not_taken_says_what_is_wrong_at_the_field(http: httpx.Client, text: str, why: str) -> None:
    # each answered "not valid base64", no hint; the single post's problem was at ["body"], not the field
    single = expect(http.post("/v1/users/victim/posts/base64", json={"post_id": "new-post", "image_base64": text}),
                    422, "validation_error")
    (problem,) = single["details"]["problems"]
    assert problem["loc"] == ["body", "image_base64"] and why in problem["msg"], problem
    batch = http.post("/v1/posts/batch", json={"items": [{"user_id": "victim", "post_id": "new-post", "image_base64": text}]})
    (item,) = batch.json()["results"][0]["error"]["details"]["problems"]
    assert item == {"loc": ["body", "items", "0", "image_base64"], "msg": problem["msg"]}, item


def test_wrong_content_types(http: httpx.Client) -> None:
    # a fine image sent as the body: the request's media type is wrong, not the image; say what to send
    error = expect(http.post("/v1/users/victim/posts", content=img.face_jpeg(), headers={"content-type": "image/jpeg"}),
                   415, "unsupported_media_type")
    assert "multipart/form-data" in error["message"] and "'image'" in error["message"]
    assert "/v1/users/victim/posts/base64" in error["message"] and "image/jpeg" in error["message"]
    # curl --data-binary @face.jpg sends it as application/x-www-form-urlencoded: no form, the same advice
    # (it was parsed as a form: 400 "Too many fields")
    error = expect(http.post("/v1/users/victim/posts", content=img.face_jpeg(),
                             headers={"content-type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type")
    assert "multipart/form-data" in error["message"] and "application/x-www-form-urlencoded" in error["message"]
    expect(http.post("/v1/users/victim/posts", data={"post_id": "new-post"}), 415, "unsupported_media_type")
    body = json.dumps({"post_id": "new-post", "probabilities": HAPPY})
    expect(http.post("/v1/users/victim/observations", content=body, headers={"content-type": "text/plain"}),
           415, "unsupported_media_type")
    expect(http.post("/v1/users/victim/observations", content=body,
                     headers={"content-type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type")
    batch = json.dumps({"items": [{"user_id": "victim", "post_id": "new-post", "probabilities": HAPPY}]})
    expect(http.post("/v1/posts/batch", content=batch, headers={"content-type": "text/plain"}),
           415, "unsupported_media_type")


def test_every_json_body_route_refuses_another_media_type(hostile_service: RunningService, http: httpx.Client) -> None:
    """docs/errors.md: a Content-Type the route does not take is 415 unsupported_media_type. The webhook
    and alert commands answered 422 "Input should be a valid dictionary" to text/plain. Every operation
    the schema lists with a JSON body is asked, so a route added later cannot go without the check."""
    ids = {"user_id": "victim", "alert_id": "evt_1", "webhook_id": "wh_" + "0" * 24}
    asked = []
    for path, operations in http.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
                error = expect(http.request(method, url, content=b'{"verdict": "confirmed"}',
                                            headers={"content-type": "text/plain"}), 415, "unsupported_media_type")
                assert "application/json" in error["message"], (path, error)
                asked.append(path)
    assert {"/v1/webhooks", "/v1/webhooks/{webhook_id}/rotate-secret", "/v1/alerts/{alert_id}/resolve",
            "/v1/users/{user_id}/observations"} <= set(asked), asked


def test_a_batch_over_its_item_limit_says_so(http: httpx.Client) -> None:
    item = {"user_id": "victim", "post_id": "new-post", "probabilities": HAPPY}
    error = expect(http.post("/v1/posts/batch", json={"items": [item] * 257}), 413, "batch_too_large")
    assert "257 items" in error["message"] and "256" in error["message"]


def test_a_batch_of_millions_of_tiny_values_is_refused_before_they_are_parsed(http: httpx.Client) -> None:
    """32 MiB of empty objects under the body limit took ~1 GB and 3 s of CPU to parse, stalling the
    worker, before the item count was read (an audit). They are counted in the bytes first: the request
    allocates about its body, not ~30 times it (tracemalloc traces every Python object, the parser's too)."""
    import tracemalloc

    for body in (b'{"items":[' + b",".join([b"{}"] * 2_000_000) + b"]}", b'{"items":[' + b",".join([b"[]"] * 2_000_000) + b"]}",
                 b'{"items":[],' + b",".join(b'"k%d":0' % i for i in range(700_000)) + b"}"):
        tracemalloc.start()
        try:
            response = http.post("/v1/posts/batch", content=body, headers={"content-type": "application/json"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        error = expect(response, 413, "batch_too_large")
        assert "JSON objects, lists and commas" in error["message"] and "at most 8224" in error["message"], error
        assert peak < 5 * len(body), f"{peak / 2**20:.0f} MiB traced for a body of {len(body) / 2**20:.0f} MiB"


def test_405_lists_every_method_of_the_path_and_its_code_is_documented(http: httpx.Client) -> None:
    for method, path, allowed in (("PUT", "/v1/users/victim", "GET, DELETE"), ("PATCH", "/v1/alerts", "GET"),
                                  ("DELETE", "/v1/webhooks", "GET, POST"), ("GET", "/v1/users/victim/posts", "POST")):
        error = expect(http.request(method, path), 405, "method_not_allowed")
        response = http.request(method, path)
        assert response.headers["allow"] == allowed, (method, path, response.headers["allow"])
        assert allowed in error["message"]
    page = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    for code in ("method_not_allowed", "batch_too_large", "unsupported_media_type"):
        assert f"| `{code}` |" in page, code


# --- size limits: refused before the body is read ------------------------------------------------

def _raw_exchange(url: str, head: str, body: bytes, wait: float = 5.0) -> tuple[int, dict, float]:
    """Send ``head`` and part of a body, never the rest; return (status, JSON body, seconds to answer)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        started = time.monotonic()
        sock.sendall(head.encode() + body)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)  # socket.timeout here: the server is still waiting for the body
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - started
    status_line, _, rest = received.partition(b"\r\n")
    payload = rest.split(b"\r\n\r\n", 1)[1]
    if b"transfer-encoding: chunked" in rest.lower().split(b"\r\n\r\n", 1)[0]:
        payload = payload.split(b"\r\n", 1)[1].rsplit(b"\r\n0", 1)[0].strip()
    return int(status_line.split()[1]), json.loads(payload), elapsed


def test_declared_oversize_upload_is_refused_without_reading_it(hostile_service: RunningService, http: httpx.Client) -> None:
    # Content-Length says 1 GB; only 64 KiB is ever sent. A server that reads first would hang.
    head = ("POST /v1/users/victim/posts HTTP/1.1\r\nHost: test\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000000\r\n\r\n")
    status, body, elapsed = _raw_exchange(hostile_service.url, head, b"x" * 65536)
    assert status == 413 and body["error"]["code"] == "image_too_large", body
    assert elapsed < 2.0
    # the JSON form of the same route, and the batch route, have their own (larger) limits
    for path in ("/v1/users/victim/posts", "/v1/posts/batch"):
        head = (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                f"Content-Length: {10**12}\r\n\r\n")
        status, body, elapsed = _raw_exchange(hostile_service.url, head, b"{")
        code = "batch_too_large" if path == "/v1/posts/batch" else "image_too_large"
        assert status == 413 and body["error"]["code"] == code, (path, body)


def test_chunked_upload_is_cut_off_at_the_limit(hostile_service: RunningService, http: httpx.Client) -> None:
    # No Content-Length: the body streams in chunks; the server must stop at the limit and answer,
    # although the final (zero) chunk never comes.
    head = ("POST /v1/users/victim/posts HTTP/1.1\r\nHost: test\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 32768
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MULTIPART_LIMIT // len(chunk) + 2))
    status, error, elapsed = _raw_exchange(hostile_service.url, head, body)
    assert status == 413 and error["error"]["code"] == "image_too_large", error
    assert elapsed < 2.0


def test_an_oversize_observation_is_413_body_too_large(http: httpx.Client) -> None:
    # no image is involved: it was 413 image_too_large, and the limit was in no document
    error = expect(observation(http, post_id="p" * 200_000), 413, "body_too_large")
    from service.routes.posts import OBSERVATION_BODY_BYTES

    assert f"the limit is {OBSERVATION_BODY_BYTES}" in error["message"], error
    limits = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text()
    assert f"| an observation's body | {OBSERVATION_BODY_BYTES // 1024} KiB" in limits


def test_oversize_image_inside_limits_of_the_form(http: httpx.Client) -> None:
    # over the image limit but under the multipart allowance: refused by the image check itself
    expect(multipart(http, b"\xff\xd8\xff" + b"\0" * (MAX_IMAGE_BYTES + 10)), 413, "image_too_large")


# --- ids, times, probabilities, shapes ----------------------------------------------------------

@pytest.mark.parametrize("user", ["u" * 129, "a%20b", "caf%C3%A9", "a%2Ab", "semi%3Bcolon", "%00"])
def test_bad_user_ids_in_the_path(http: httpx.Client, user: str) -> None:
    expect(observation(http, user=user), 400, "invalid_id")
    expect(multipart(http, img.face_jpeg(), user=user), 400, "invalid_id")
    expect(http.get(f"/v1/users/{user}"), 400, "invalid_id")
    expect(http.delete(f"/v1/users/{user}"), 400, "invalid_id")


@pytest.mark.parametrize("user", ["%2E", "%2E%2E", "...", ".%2E."])
def test_user_ids_of_dots_only_are_refused_where_a_post_writes_them(http: httpx.Client, user: str) -> None:
    """"." and ".." were taken by posts, but curl and httpx resolve /v1/users/../ to /v1/: the user could not be
    read or erased with them (an erasure request). Refused on every write; reads and DELETE still take them."""
    b64 = base64.b64encode(img.face_jpeg()).decode()
    for response in (observation(http, user=user), multipart(http, img.face_jpeg(), user=user),
                     http.post(f"/v1/users/{user}/posts/base64", json={"post_id": "new-post", "image_base64": b64})):
        assert "only dots" in expect(response, 400, "invalid_id")["message"]
    plain = user.replace("%2E", ".")
    batch = http.post("/v1/posts/batch", json={"items": [{"user_id": plain, "post_id": "new-post", "probabilities": HAPPY}]})
    error = batch.json()["results"][0]["error"]
    assert error["code"] == "validation_error" and error["details"]["problems"][0]["loc"] == ["body", "items", "0", "user_id"]
    assert "only dots" in error["message"], error
    expect(http.get(f"/v1/users/{user}"), 404, "user_not_found")  # read and erased as any id: not refused
    expect(http.delete(f"/v1/users/{user}"), 404, "user_not_found")


@pytest.mark.parametrize("post_id", ["p" * 129, "", "a b", "a/b", "é", "line\nbreak", "{victim}"])
def test_bad_post_ids(http: httpx.Client, post_id: str) -> None:
    error = expect(observation(http, post_id=post_id), 422, "validation_error")
    assert "post_id" in error["message"]
    expect(multipart(http, img.face_jpeg(), post_id=post_id), 422, "validation_error")
    expect(http.post("/v1/users/victim/posts", json={"post_id": post_id, "image_base64": ""}), 422, "validation_error")
    batch = http.post("/v1/posts/batch", json={"items": [{"user_id": "victim", "post_id": post_id,
                                                          "probabilities": HAPPY}]})
    assert batch.status_code == 200
    assert batch.json()["results"][0]["error"]["code"] == "validation_error"


def test_the_same_mistake_answers_the_same_code_and_shape_on_every_route(http: httpx.Client) -> None:
    """A bad post id, or a field no route takes, is one mistake: 422 validation_error with
    details.problems naming the field, whether FastAPI validated the body (observations) or the route
    parsed it itself (multipart, base64, a batch, a batch's item)."""
    face = img.face_jpeg()
    b64 = base64.b64encode(face).decode()
    item = {"user_id": "victim", "post_id": "new-post", "probabilities": HAPPY}

    def problems(response: httpx.Response) -> list[dict[str, object]]:
        error = response.json()["error"] if response.status_code != 200 else response.json()["results"][0]["error"]
        assert error["code"] == "validation_error", (response.request.url, error)
        assert response.status_code in (200, 422)  # a batch answers each item in its results
        return error["details"]["problems"]

    bad_id = [observation(http, post_id="pé"), multipart(http, face, post_id="pé"),
              http.post("/v1/users/victim/posts/base64", json={"post_id": "pé", "image_base64": b64}),
              http.post("/v1/users/victim/posts", json={"post_id": "pé", "image_base64": b64}),
              http.post("/v1/posts/batch", json={"items": [{**item, "post_id": "pé"}]})]
    for response in bad_id:
        (problem,) = problems(response)
        assert problem["loc"][0] == "body" and problem["loc"][-1] == "post_id" and problem["msg"], problem
    unknown = [observation(http, mood="great"), multipart(http, face, mood="great"),
               http.post("/v1/users/victim/posts/base64", json={"post_id": "new-post", "image_base64": b64, "mood": 1}),
               http.post("/v1/posts/batch", json={"items": [item], "mood": 1}),
               http.post("/v1/posts/batch", json={"items": [{**item, "mood": 1}]})]
    for response in unknown:
        (problem,) = problems(response)
        assert problem["loc"][-1] == "mood" and "Extra inputs" in problem["msg"], problem
    (nested,) = problems(http.post("/v1/posts/batch", json={"items": [{**item, "post_id": "pé"}]}))
    assert nested["loc"] == ["body", "items", "0", "post_id"]  # where in the batch, as FastAPI would say
    (no_image,) = problems(http.post("/v1/users/victim/posts", files={"post_id": (None, "new-post")}))
    assert no_image["loc"] == ["body", "image"]
    # a field given twice: the last one won, so an ambiguous post id (the idempotency key) was guessed
    (twice,) = problems(http.post("/v1/users/victim/posts", files=[
        ("image", ("p", img.face_jpeg(), "image/jpeg")), ("post_id", (None, "new-post")), ("post_id", (None, "other"))]))
    assert twice["loc"] == ["body", "post_id"] and "more than once" in twice["msg"], twice
    # an empty image_base64 is no image at all (a 422), not an image of an unknown type (415)
    for value in ("", "\n", "data:image/jpeg;base64,"):  # a data: URL of nothing too (a re-audit)
        (empty,) = problems(http.post("/v1/users/victim/posts/base64", json={"post_id": "new-post", "image_base64": value}))
        assert empty["loc"] == ["body", "image_base64"] and "empty" in empty["msg"], (value, empty)
        item = http.post("/v1/posts/batch", json={"items": [{"user_id": "victim", "post_id": "new-post",
                                                              "image_base64": value}]}).json()["results"][0]
        assert item["error"]["code"] == "validation_error" and "empty" in item["error"]["message"], (value, item)


@pytest.mark.parametrize("created_at", [
    "yesterday", "2026-13-01T00:00:00Z", "2026-02-30T10:00:00Z", "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+12:00", "1969-12-31T23:59:59Z", 1e20, True, {"at": 1},
    # past clock skew: 9999-12-30 held the user's last_post_at there for good (an audit)
    "9999-12-30T23:59:59.999999Z", (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()])
def test_bad_created_at(http: httpx.Client, created_at: object) -> None:
    error = expect(observation(http, created_at=created_at), 422, "validation_error")
    assert "created_at" in error["message"]
    if isinstance(created_at, str):
        expect(multipart(http, img.face_jpeg(), created_at=created_at), 422, "validation_error")


def test_naive_created_at_is_utc(http: httpx.Client, redis_client: redis.Redis) -> None:
    response = observation(http, user="naive", created_at="2026-11-01T10:00:00")
    assert response.status_code == 200 and response.json()["created_at"] == "2026-11-01T10:00:00.000000Z"
    # a leap second (RFC 3339 allows it; it was refused as "unexpected extra characters"): its minute's last µs
    response = observation(http, user="naive", created_at="2016-12-31T23:59:60Z", post_id="leap")
    assert response.status_code == 200 and response.json()["created_at"] == "2016-12-31T23:59:59.999999Z", response.text
    response = observation(http, user="naive", created_at="2016-12-31T23:59:60.5+00:00", post_id="leap2")
    assert response.status_code == 200 and response.json()["created_at"] == "2016-12-31T23:59:59.999999Z", response.text
    redis_client.delete(*redis_client.keys("ed:{naive}:*"))  # keep the teardown check about "victim"


@pytest.mark.parametrize("probabilities,why", [
    ({**HAPPY, "happy": -0.85}, "negative"),
    ({**HAPPY, "happy": 0.95, "sad": -0.07}, "negative but summing to 1"),
    ({k: v for k, v in HAPPY.items() if k != "neutral"}, "six labels"),
    ({**HAPPY, "contempt": 0.0}, "an eighth label"),
    ({**HAPPY, "happy": 0.35}, "summing to 0.5"),
    ({k: 1.0 for k in HAPPY}, "summing to 7"),
    ({k: 0.0 for k in HAPPY}, "all zero"),
    ([0.02, 0.01, 0.02, 0.85, 0.03, 0.04, 0.03], "a list"),
])
def test_bad_probabilities(http: httpx.Client, probabilities: object, why: str) -> None:
    error = expect(observation(http, probabilities=probabilities), 422, "validation_error")
    assert "probabilities" in error["message"], why


@pytest.mark.parametrize("value", ["0.85", True, None])
def test_a_probability_is_a_number_not_a_string(http: httpx.Client, value: object) -> None:
    # {"happy": "1"} was taken, though the schema says number
    probabilities = {**HAPPY, "happy": value}
    error = expect(observation(http, probabilities=probabilities), 422, "validation_error")
    assert error["details"]["problems"][0]["loc"] == ["body", "probabilities", "happy"], error
    batch = http.post("/v1/posts/batch", json={"items": [{"user_id": "victim", "post_id": "new-post",
                                                          "probabilities": probabilities}]})
    error = batch.json()["results"][0]["error"]
    assert error["code"] == "validation_error" and error["details"]["problems"][0]["loc"][-1] == "happy", error


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_probabilities(http: httpx.Client, literal: str) -> None:
    body = json.dumps({"post_id": "new-post", "probabilities": {**HAPPY, "happy": 0.5}}).replace("0.5", literal)
    response = http.post("/v1/users/victim/observations", content=body, headers={"content-type": "application/json"})
    expect(response, 422, "validation_error")


@pytest.mark.parametrize("body", [b'{"post_id": "new-post", ', b"{not json}",
                                  b"\xef\xbb\xbf" + json.dumps({"post_id": "new-post", "probabilities": HAPPY}).encode()])
def test_a_body_that_is_not_json_is_400_on_every_json_route(http: httpx.Client, body: bytes) -> None:
    """docs/errors.md: not JSON is 400 bad_request. Observations (pydantic parses their bytes itself)
    answered 422 validation_error "Invalid JSON" where the other JSON routes answered 400."""
    headers = {"content-type": "application/json"}
    messages = [expect(http.post(path, content=body, headers=headers), 400, "bad_request")["message"]
                for path in ("/v1/users/victim/observations", "/v1/users/victim/posts/base64", "/v1/posts/batch")]
    assert all(m.startswith("body is not valid JSON") for m in messages), messages
    if body.startswith(b"\xef\xbb\xbf"):
        assert all("byte order mark" in m for m in messages), messages


@pytest.mark.parametrize("body", [[], ["post_id"], "post", 42, None])
def test_json_bodies_that_are_not_objects(http: httpx.Client, body: object) -> None:
    raw = json.dumps(body)
    headers = {"content-type": "application/json"}
    expect(http.post("/v1/users/victim/observations", content=raw, headers=headers), 422, "validation_error")
    expect(http.post("/v1/users/victim/posts", content=raw, headers=headers), 422, "validation_error")
    expect(http.post("/v1/posts/batch", content=raw, headers=headers), 422, "validation_error")


def test_unknown_fields(http: httpx.Client) -> None:
    expect(observation(http, mood="great"), 422, "validation_error")
    expect(multipart(http, img.face_jpeg(), mood="great"), 422, "validation_error")
    expect(http.post("/v1/users/victim/posts", json={"post_id": "new-post", "image_base64": "", "mood": 1}),
           422, "validation_error")
    item = {"user_id": "victim", "post_id": "new-post", "probabilities": HAPPY}
    expect(http.post("/v1/posts/batch", json={"items": [item], "mood": 1}), 422, "validation_error")
    refused = http.post("/v1/posts/batch", json={"items": [{**item, "mood": 1}]})
    assert refused.status_code == 200 and refused.json()["results"][0]["error"]["code"] == "validation_error"


def test_malformed_multipart(http: httpx.Client) -> None:
    expect(http.post("/v1/users/victim/posts", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}),
           400, "bad_request")  # no boundary
    two = [("image", ("a", img.face_jpeg(), "image/jpeg")), ("image", ("b", img.face_jpeg(), "image/jpeg"))]
    expect(http.post("/v1/users/victim/posts", files=two, data={"post_id": "new-post"}), 400, "bad_request")
    expect(http.post("/v1/users/victim/posts", files={"post_id": (None, "new-post"), "image": (None, "not a file")}),
           422, "validation_error")
