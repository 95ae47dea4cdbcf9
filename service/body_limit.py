"""A bound on every request body that no route bounds itself, enforced before the app reads it.

The ingestion routes (routes/posts.py) stream their bodies against limits of their own, up to the
image and batch limits. Every other route (webhook and alert commands, the /ui forms) took whatever
it was sent: FastAPI reads a body whole before the route's dependencies run, the API key check
included, so a client without a key could make a worker buffer hundreds of MiB (docs/limits.md).
Such a body is now refused from its ``Content-Length``, or as its stream passes the bound, with
413 ``body_too_large``, answered by the app's own error handler (JSON under /v1, a page under /ui).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from fastapi import APIRouter
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import (BatchTooLarge, BodyTimeout, BodyTooLarge, ClientClosedRequest, EmodriftError,
                            ImageTooLarge)

# A command's body is a few hundred bytes; the largest, a /ui verdict form with a 2000-character note
# and its hidden fields, is under 10 KiB.
COMMAND_BODY_BYTES = 64 * 1024
# A body's deadline grows with its declared size: a 28.6 MiB batch over a 3 Mbit/s uplink took more than
# the flat deadline (an on-call re-audit). At least this many bytes a second beyond it (1 Mbit/s).
MIN_BYTES_PER_SECOND = 128 * 1024


async def read_bounded(request: Request, limit: int,
                       too_large: type[ImageTooLarge | BatchTooLarge | BodyTooLarge] = BodyTooLarge,
                       setting: str = "") -> bytes:
    """The request body, refusing (413: ``too_large``, an image post's, a batch's, or another body's)
    past ``limit`` bytes from its ``Content-Length``, or as its stream passes it, without reading the
    rest; 408 ``BodyTimeout`` when the whole of it takes longer than EMODRIFT_BODY_TIMEOUT_SECONDS and a
    second per MIN_BYTES_PER_SECOND it declares;
    ``ClientDisconnect`` when the client hangs up first. Every body the service reads is read here:
    the ingestion routes with their own limits, every other route through ``BodyLimit``. ``setting``: what
    the limit comes from, in the refusal's words (a derived limit alone named no setting: an audit)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"request body is {declared} bytes; the limit is {limit}{setting}")
    chunks: list[bytes] = []
    size, seconds = 0, request.app.state.settings.body_timeout_seconds
    if declared and declared.isdigit():
        seconds += int(declared) / MIN_BYTES_PER_SECOND
    try:
        async with asyncio.timeout(seconds):  # the whole body: a byte a second never trips a per-read timeout
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(f"request body exceeds {limit} bytes{setting}")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {seconds:.0f} s ({size} bytes came): "
                          f"EMODRIFT_BODY_TIMEOUT_SECONDS, and a second per {MIN_BYTES_PER_SECOND // 1024} KiB "
                          "its Content-Length declares") from None
    body = b"".join(chunks)
    request._body = body  # let request.form()/json() reuse what was read
    return body


class BodyLimit:
    """Bounds the body of a request to any path but those of ``own_limits``' routes."""

    def __init__(self, app: ASGIApp, own_limits: APIRouter, routers: Sequence[APIRouter]) -> None:
        self.app = app
        self.own: list[re.Pattern[str]] = [route.path_regex for route in own_limits.routes
                                           if hasattr(route, "path_regex")]
        self.routes = [route for router in routers for route in router.routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(regex.match(scope["path"]) for regex in self.own):
            await self.app(scope, receive, send)
            return
        try:
            body = await read_bounded(Request(scope, receive), COMMAND_BODY_BYTES)
        except (BodyTooLarge, BodyTimeout, ClientDisconnect) as raised:  # a hang-up's answer reaches nobody; it is counted
            exc = ClientClosedRequest() if isinstance(raised, ClientDisconnect) else raised
            # answered before routing: the route it was for labels its metrics (RequestMetrics), not "unmatched"
            scope.setdefault("route", next((route for route in self.routes if route.matches(scope)[0] == Match.FULL),
                                           None))
            handler = scope["app"].exception_handlers[EmodriftError]  # errors.install's, wrapped for /ui
            response = await handler(Request(scope), exc)
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:  # after the body: what the client does next (a disconnect)
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

