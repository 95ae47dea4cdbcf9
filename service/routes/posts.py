"""Ingestion: one image post, one observation, or a backfill batch."""

from __future__ import annotations

import asyncio
import codecs
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from service import json_codec, openapi
from service.base64_images import decode_base64
from service.body_limit import read_bounded
from service.config import Settings
from service.errors import (
    BadRequest, BatchTooLarge, EmodriftError, ImageTooLarge, OutOfOrder, Unprocessable, UnsupportedMediaType, error_body,
    log_server_error,
)
from service.json_codec import FastJSONResponse
from service.pipeline import Pipeline
from service.transition import Scored
from service.redis_pipelining import BATCHED
from service.routes.deps import ApiKey, JsonBody, NewUserId, PipelineDep, SettingsDep, media_type
from service.schemas import (
    ID_PATTERN, BatchItem, BatchRequest, BatchResponse, ImagePostJSON, ObservationJSON, PostFields, PostResult,
)

router = APIRouter(prefix="/v1", tags=["posts"], dependencies=[ApiKey])

MULTIPART_OVERHEAD = 64 * 1024
# An observation is a post id, a time and seven numbers: a few hundred bytes (docs/limits.md)
OBSERVATION_BODY_BYTES = 64 * 1024

# Multipart and JSON image posts are two operations (postImage, postImageBase64): one operation with
# two request media types makes client generators produce code that does not import.
MULTIPART_IMAGE_BODY = openapi.request_body("multipart/form-data", name="ImageUpload", schema={
    "type": "object", "required": ["image", "post_id"],
    "properties": {"image": {"type": "string", "format": "binary", "description": "the image file"},
                   "post_id": {"type": "string", "pattern": ID_PATTERN.pattern, "maxLength": 128},
                   "created_at": {"type": "string", "format": "date-time",
                                  "description": "RFC 3339 (no offset: UTC); default: when it was received"}}})
JSON_IMAGE_BODY = openapi.request_body("application/json", ImagePostJSON)


class _InMemoryMultiPart(MultiPartParser):
    """Starlette's multipart parser with file parts kept in memory: its default spools a part past
    1 MiB to a temporary file, and no image may touch the disk. The body is read (and limited) before
    parsing, so a part never outgrows ``spool_max_size`` and the spool never rolls over."""

    def __init__(self, request: Request, limit: int) -> None:
        super().__init__(request.headers, request.stream(), max_files=1, max_fields=8)
        self.spool_max_size = limit + 1


async def read_form(request: Request, limit: int, setting: str = "") -> FormData:
    """The multipart form of a body of at most ``limit`` bytes (413 past it), parsed in memory."""
    await read_bounded(request, limit, ImageTooLarge, setting)
    try:
        return await _InMemoryMultiPart(request, limit).parse()
    except MultiPartException as exc:  # 400, as Starlette's own form parsing answers it
        raise BadRequest(f"multipart body: {exc.message}") from exc


ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(model: type[ModelT], data: Any, at: tuple[str | int, ...] = ("body",)) -> ModelT:
    """``data`` as ``model``, or 422 validation_error with each problem's place under ``at`` (as FastAPI
    answers the routes it validates itself: one shape whichever route a client got wrong)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable.of([{**e, "loc": (*at, *e["loc"])} for e in exc.errors()]) from exc


def _not_json(body: bytes, reason: object) -> BadRequest:
    """400 for a body that does not parse as JSON, the same on every JSON route (docs/errors.md)."""
    if body.startswith(codecs.BOM_UTF8):  # Windows tools write one; the parsers' own words do not say so
        reason = "it starts with a UTF-8 byte order mark (BOM): send UTF-8 without one"
    return BadRequest(f"body is not valid JSON: {reason}")


def _loads(body: bytes) -> Any:
    try:
        return json_codec.loads(body)
    except ValueError as exc:
        raise _not_json(body, exc) from exc


# Bodies past this are parsed (and their base64 decoded) in a worker thread: a huge batch once held
# the event loop, and every other request with it, for seconds (docs/limits.md).
OFF_LOOP_BYTES = 256 * 1024


# The JSON objects, lists and commas a batch item holds at most (an observation's probabilities hold the
# most, 2 and 11 with the item's own; a data URL's one comma); counted in the raw bytes before the parse, which
# turns each value into a Python object: 32 MiB of empty objects took ~1 GB and 3 s of CPU to parse, and
# stalled the worker, before the item count was read (an audit). Ids and times hold none of these bytes.
VALUES_PER_ITEM = 32


def _batch_loads(body: bytes, max_items: int) -> Any:
    found = body.count(b"{") + body.count(b"[") + body.count(b",")
    if found > (bound := VALUES_PER_ITEM * (max_items + 1)):
        raise BatchTooLarge(f"the body holds {found} JSON objects, lists and commas; a batch of at most {max_items} "
                            f"items holds at most {bound} (EMODRIFT_MAX_BATCH_ITEMS): split it")
    return _loads(body)


async def _batch_body(request: Request, limit: int, max_items: int) -> Any:
    body = await read_bounded(request, limit, BatchTooLarge, " (EMODRIFT_MAX_BATCH_BYTES): send fewer items a batch")
    if len(body) > OFF_LOOP_BYTES:
        return await asyncio.to_thread(_batch_loads, body, max_items)
    return _batch_loads(body, max_items)


def _image_post(body: bytes) -> ImagePostJSON:
    return _parse(ImagePostJSON, _loads(body))  # the model's validator decodes the base64


def _image_limit(settings: Settings, sent: str) -> str:
    """What an image post's body limit comes from, in its refusal's words."""
    return (f": an image of at most {settings.max_image_bytes} bytes (EMODRIFT_MAX_IMAGE_BYTES), {sent}, with "
            f"{MULTIPART_OVERHEAD // 1024} KiB for the rest of the body")


async def _image_json(request: Request, settings: Settings) -> ImagePostJSON:
    # base64 is 4/3 of the bytes
    body = await read_bounded(request, settings.max_image_bytes * 4 // 3 + MULTIPART_OVERHEAD, ImageTooLarge,
                              _image_limit(settings, "as base64, 4/3 of it"))
    return await asyncio.to_thread(_image_post, body) if len(body) > OFF_LOOP_BYTES else _image_post(body)


# The routes answer a FastJSONResponse (orjson) of the dict they built: response_model documents the answer
# (OpenAPI, and tests/test_fuzz.py checks answers against it) without FastAPI validating and
# re-serialising every answer through it.
@router.post("/users/{user_id}/posts", response_model=PostResult, openapi_extra=MULTIPART_IMAGE_BODY,
             summary="Score one image post (multipart upload) and advance the user's state",
             description="Clients that send JSON with a base64 image to this path keep being served; the "
                         "documented way to send JSON is `POST /v1/users/{user_id}/posts/base64`.")
async def post_image(user_id: NewUserId, request: Request, pipeline: PipelineDep, settings: SettingsDep) -> FastJSONResponse:
    content_type = media_type(request)
    post: PostFields
    # Only multipart can carry a file. A urlencoded body is what curl --data-binary sends raw image bytes
    # as by default: parsed as a form, an image was "Too many fields" (400) instead of the advice below.
    if content_type == "multipart/form-data":
        form = await read_form(request, settings.max_image_bytes + MULTIPART_OVERHEAD, _image_limit(settings, "in a form"))
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise Unprocessable.at(("body", "image"), "a file field named 'image' is required")
        if repeated := Unprocessable.given_twice("body", [name for name, _ in form.multi_items()]):
            raise Unprocessable.of(repeated)
        fields = {k: v for k, v in form.items() if k != "image" and isinstance(v, str)}
        post = _parse(PostFields, fields)
        data = await upload.read()
    elif content_type == "application/json":  # the one operation of earlier versions took both
        post = await _image_json(request, settings)
        data = post.image_bytes()
    else:  # the request's media type, not the image, is wrong: the image was never looked at
        raise UnsupportedMediaType(f"send multipart/form-data with the image in a file field named 'image' (and "
                                   f"post_id, created_at), or JSON with image_base64 to {request.url.path}/base64; "
                                   f"not {content_type or 'a body without a Content-Type'}")
    scored = await pipeline.score_image(data, user_id=user_id)
    return FastJSONResponse(await pipeline.apply(user_id, post.post_id, post.created_at, scored))


@router.post("/users/{user_id}/posts/base64", response_model=PostResult, dependencies=[JsonBody],
             openapi_extra=JSON_IMAGE_BODY, summary="Score one image post (JSON, base64 image) and advance the user's state")
async def post_image_base64(user_id: NewUserId, request: Request, pipeline: PipelineDep,
                            settings: SettingsDep) -> FastJSONResponse:
    post = await _image_json(request, settings)
    scored = await pipeline.score_image(post.image_bytes(), user_id=user_id)
    return FastJSONResponse(await pipeline.apply(user_id, post.post_id, post.created_at, scored))


OBSERVATION_BODY = openapi.request_body("application/json", ObservationJSON)


@router.post("/users/{user_id}/observations", response_model=PostResult, dependencies=[JsonBody],
             openapi_extra=OBSERVATION_BODY,
             summary="Advance the user's state with emotion probabilities scored elsewhere")
async def post_observation(user_id: NewUserId, request: Request, pipeline: PipelineDep) -> FastJSONResponse:
    # pydantic reads the bytes straight into the model (JSON parsed in Rust), not FastAPI's json.loads
    # and then validation, a share of an observation's CPU (docs/performance.md). Errors keep FastAPI's 422 shape.
    body = await read_bounded(request, OBSERVATION_BODY_BYTES)
    try:
        post = ObservationJSON.model_validate_json(body)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        # Not JSON at all is pydantic's one error of this type: 400 as on the other JSON routes, found from
        # the error rather than by parsing the body a second time
        if problems[0]["type"] == "json_invalid":
            raise _not_json(body, problems[0]["ctx"]["error"]) from exc
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in problems]) from exc
    return FastJSONResponse(await pipeline.apply(user_id, post.post_id, post.created_at,
                                                 Pipeline.observed(post.probabilities, post.face_detected)))


def _decode_images(items: list[BatchItem]) -> list[bytes | ValueError | None]:
    """Each item's image bytes (None: no image; ValueError: not base64), one item after another: in
    one worker thread, the event loop is the only other taker of the interpreter lock (several
    decoding threads at once starved it)."""
    decoded: list[bytes | ValueError | None] = []
    for item in items:
        try:
            decoded.append(None if item.image_base64 is None else decode_base64(item.image_base64))
        except ValueError as exc:
            decoded.append(exc)
    return decoded


async def _score_item(pipeline: Pipeline, index: int, item: BatchItem, data: bytes | ValueError | None,
                      share: asyncio.Semaphore) -> Scored:
    if (item.image_base64 is None) == (item.probabilities is None):
        raise Unprocessable.at(("body", "items", index), "each item needs exactly one of image_base64 or probabilities")
    if item.probabilities is not None:
        return Pipeline.observed(item.probabilities, item.face_detected)
    if not isinstance(data, bytes):
        raise Unprocessable.at(("body", "items", index, "image_base64"), str(data))
    return await pipeline.score_image(data, share, item.user_id)


BATCH_BODY = openapi.request_body("application/json", BatchRequest)


class _InOrder:
    """A batch's items applied user by user, each user's in the order given. An item refused for a
    reason to retry (one with Retry-After: overloaded, Redis away, a race with another writer) holds back
    its user's later items: applied, they would come before its resend (an audit: under load a user's
    timeline read p1, p3, p5...)."""

    def __init__(self, pipeline: Pipeline, request: Request, results: list[dict[str, Any]], backfill: bool) -> None:
        self.pipeline, self.request, self.results, self.backfill = pipeline, request, results, backfill
        self.applied = 0
        self.retry: EmodriftError | None = None  # the first refusal to retry
        self.failures: dict[str, EmodriftError] = {}  # the 5xx among the items, one per code

    async def user(self, entries: list[tuple[int, BatchItem, Scored | BaseException]]) -> None:
        held: tuple[int, EmodriftError] | None = None
        for index, item, score in entries:
            try:
                if held is not None:
                    raise type(held[1])(f"not applied: item {held[0]} of user {item.user_id} was refused "
                                        f"({held[1].code}); send it and the items after it again, in order")
                if isinstance(score, BaseException):
                    raise score
                self.results[index] = {"index": index, **await self.pipeline.apply(
                    item.user_id, item.post_id, item.created_at, score, backfill=self.backfill)}
                self.applied += 1
            except OutOfOrder as exc:  # the item's own field, as the refusals inside one batch name it
                self.results[index] = _item_error(index, _out_of_order(index, exc.details["problems"][0]["msg"]))
            except EmodriftError as exc:
                self.results[index] = _item_error(index, exc)
                if "Retry-After" in (exc.headers or {}) and held is None:
                    held, self.retry = (index, exc), self.retry or exc
                if exc.status >= 500:
                    self.failures.setdefault(exc.code, exc)


def _item_error(index: int, exc: EmodriftError) -> dict[str, Any]:
    """A batch item's refusal, as its result."""
    return {"index": index, **error_body(exc.code, exc.message, **exc.details)}


def _out_of_order(index: int, message: str) -> EmodriftError:
    """Named at the item's own field, whoever found it: this route, or the pipeline against the stored state."""
    return OutOfOrder.at(("body", "items", index, "created_at"), message)


def _oldest_first(items: list[tuple[int, BatchItem]], results: list[dict[str, Any]]) -> list[tuple[int, BatchItem]]:
    """The items of users whose items are in time order; each item of a user whose are not is refused, before
    any is decoded. A user's items are applied in the order given: history sent newest first (``ORDER BY
    created_at DESC``) was taken silently and reversed the user's change, alert and baseline (an audit). An
    item without ``created_at`` is dated when it arrives, as it is applied; a repeat of a post id at the same
    time is its retry (answered as a duplicate), not a step back."""
    now = datetime.now(timezone.utc)
    last: dict[str, tuple[int, datetime, bool]] = {}  # a user's item before: its index, time, and dated or not
    backwards: dict[str, str] = {}
    sent: dict[tuple[str, str], datetime | None] = {}
    for index, item in items:
        key = (item.user_id, item.post_id)
        retry = key in sent and sent[key] == item.created_at
        sent.setdefault(key, item.created_at)
        if item.user_id in backwards or retry:
            continue
        at = item.created_at or now
        before = last.get(item.user_id)
        if before is not None and at < before[1]:
            backwards[item.user_id] = (
                f"the items of user {item.user_id} are not oldest first: item {index} was created before item "
                f"{before[0]}{'' if before[2] else ' (which has no created_at: it is dated when it arrives)'};"
                " none of theirs was applied: send them again sorted by created_at")
        last[item.user_id] = (index, at, item.created_at is not None)
    for index, item in items:
        if item.user_id in backwards:
            results[index] = _item_error(index, _out_of_order(index, backwards[item.user_id]))
    return [(index, item) for index, item in items if item.user_id not in backwards]


def _batch_envelope(raw: Any, max_items: int) -> bool:
    """The batch body's envelope checked before any item is parsed (its ``items`` a non-empty list of at
    most ``max_items``, nothing else but ``backfill``); its ``backfill`` flag."""
    if isinstance(raw, dict) and isinstance(raw.get("items"), list) and len(raw["items"]) > max_items:
        raise BatchTooLarge(f"{len(raw['items'])} items; at most {max_items} per batch "
                            "(EMODRIFT_MAX_BATCH_ITEMS): split it")
    if not isinstance(raw, dict) or not isinstance(raw.get("items"), list) or not raw["items"]:
        raise Unprocessable.at(("body", "items"), "a non-empty list is required")
    if unknown := sorted(set(raw) - {"items", "backfill"}):
        raise Unprocessable.of([{"loc": ("body", name), "msg": "Extra inputs are not permitted"} for name in unknown])
    backfill = raw.get("backfill", False)
    if not isinstance(backfill, bool):
        raise Unprocessable.at(("body", "backfill"), "Input should be a valid boolean")
    return backfill


@router.post("/posts/batch", response_model=BatchResponse, dependencies=[JsonBody], openapi_extra=BATCH_BODY,
             summary="Many posts of many users, each user's oldest first; a backfill with backfill: true",
             description="Replaying history? Set `\"backfill\": true`: without it every alert is sent as a webhook, "
             "as a live post's would be, and each old change reaches receivers now (an integration audit's day-one "
             "replay sent 300). With it the posts are history: states advance and alerts are recorded (listed in "
             "/v1/alerts with `backfill: true`), but no webhook is sent.")
async def post_batch(request: Request, pipeline: PipelineDep, settings: SettingsDep) -> FastJSONResponse:
    # One limit on the whole body, refused (413) from Content-Length or as soon as the stream passes it:
    # items x image limit was ~7 GB, and a 373 MiB body took a worker from 0.27 to 1.32 GiB.
    raw = await _batch_body(request, settings.max_batch_bytes, settings.max_batch_items)
    backfill = _batch_envelope(raw, settings.max_batch_items)
    results: list[dict[str, Any]] = [{} for _ in raw["items"]]
    items: list[tuple[int, BatchItem]] = []
    for index, entry in enumerate(raw["items"]):
        try:
            items.append((index, _parse(BatchItem, entry, ("body", "items", index))))
        except Unprocessable as exc:  # that item's answer; the others go on
            results[index] = _item_error(index, exc)

    items = _oldest_first(items, results)
    # Score every image concurrently (they share CNN batches), then apply each user's posts in order.
    images = await asyncio.to_thread(_decode_images, [item for _, item in items])  # megabytes: off the loop
    share = pipeline.decode_share()  # others' posts take turns with the batch's images, not wait for them all
    scored = await asyncio.gather(*(_score_item(pipeline, index, item, data, share)
                                    for (index, item), data in zip(items, images)), return_exceptions=True)
    per_user: dict[str, list[tuple[int, BatchItem, Scored | BaseException]]] = defaultdict(list)
    for (index, item), score in zip(items, scored):
        per_user[item.user_id].append((index, item, score))
    applying = _InOrder(pipeline, request, results, backfill)
    batched = BATCHED.set(True)  # the users' tasks (they copy this context) pipeline their Redis commands
    try:
        await asyncio.gather(*(applying.user(entries) for entries in per_user.values()))
    finally:
        BATCHED.reset(batched)
    if applying.retry is not None and not applying.applied:  # nothing done, and worth sending again: say so
        raise applying.retry  # logged by the error handler, as any 5xx answer
    for failure in applying.failures.values():  # the batch answers 200: its items' 5xx, once per code
        log_server_error(request, failure)
    return FastJSONResponse({"results": results})
