"""Domain errors and the one handler that renders them.

Every error a client can see is an ``EmodriftError`` subclass with a stable ``code`` and an HTTP
``status``; handlers raise them and :func:`install` maps them to
``{"error": {"code": ..., "message": ...}}`` in one place.

    EmodriftError (500 internal)                     a bug; the message says what failed
    ├── BadRequest (400 bad_request)                 the body cannot be parsed (not JSON, broken multipart), or a cursor is not one this API returned
    │   └── InvalidId (400 invalid_id)               a user id in the path or the query that is not 1-128 of [A-Za-z0-9._:@-], or only dots where a post writes it (an id in the body is a field: validation_error)
    ├── Unauthorized (401 unauthorized)              keys are configured and the request has none, or a wrong one
    ├── Forbidden (403 forbidden)                    the key lacks the route's scope
    ├── NotFound (404 not_found)                     no such route
    │   ├── UserNotFound (404 user_not_found)        no posts for this user (or erased, or expired)
    │   ├── WebhookNotFound (404 webhook_not_found)  no such subscription
    │   ├── AlertNotFound (404 alert_not_found)      no such alert (or its user was erased, or expired)
    │   └── DeliveryNotFound (404 delivery_not_found)  no such delivery of this subscription
    ├── Conflict (409 conflict)                      the request clashes with the current state
    │   ├── StateConflict (409 state_conflict)    compare-and-set kept losing
    │   ├── DeliveryNotReplayable (409 delivery_not_replayable)  still pending, delivered already (without force=true), or its webhook is disabled
    │   ├── AlertResolved (409 alert_resolved)     already judged (with another verdict, or note)
    │   └── WebhookDisabled (409 webhook_disabled)  a test event to a disabled subscription
    ├── MethodNotAllowed (405 method_not_allowed)   the path exists, not with this method; `Allow` lists those it takes
    ├── ImageTooLarge (413 image_too_large)        bytes or pixel count over the limit
    ├── BatchTooLarge (413 batch_too_large)        a batch of more items (EMODRIFT_MAX_BATCH_ITEMS) or bytes (EMODRIFT_MAX_BATCH_BYTES) than allowed
    ├── BodyTooLarge (413 body_too_large)          a body that is no image post's or batch's over its limit (an observation's; a command's, 64 KiB: docs/limits.md)
    ├── BodyTimeout (408 body_timeout)             the whole body did not arrive within EMODRIFT_BODY_TIMEOUT_SECONDS (a client trickling bytes)
    ├── ClientClosedRequest (499 client_closed_request)  the client hung up before its body arrived: nobody reads the answer; counted 4xx, not logged (nginx's 499)
    ├── UnsupportedImage (415 unsupported_image)    not an image, or a format we do not take
    ├── UnsupportedMediaType (415 unsupported_media_type)  the request's Content-Type is not one the route takes (the message says which)
    ├── Unprocessable (422 validation_error)         a field missing, malformed or unknown, on every route alike (a post id too): `details.problems` lists each, `{"loc", "msg"}`
    │   ├── CorruptImage (422 corrupt_image)        truncated or undecodable
    │   ├── ImageTooComplex (422 image_too_complex)  decoding costs out of proportion (JPEG scans, PNG chunks, budget)
    │   ├── OutOfOrder (422 out_of_order)          a batch's post older than one before it: its user's items (not oldest first), or a backfill's older than the user's last post
    │   └── InvalidWebhookUrl (422 invalid_webhook_url)  not http(s), or resolves to a private address
    ├── Overloaded (429 overloaded)                  the inference queue is full
    │   └── RateLimited (429 rate_limited)           too many requests for this API key; Retry-After: when one is next admitted
    └── Unavailable (503 unavailable)                a dependency is not available; retry
        ├── StoreUnavailable (503 store_unavailable) Redis unreachable
        ├── ModelUnavailable (503 model_unavailable) the models are not loaded yet (starting up)
        ├── NotReady (503 not_ready)                 /readyz: a check failed (`details.checks` says which)
        └── EmbeddedRedisExited (503 embedded_redis_exited)  /healthz: the embedded redis-server has exited; restart `emodrift serve`
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match


class EmodriftError(Exception):
    code = "internal"
    status = 500
    headers: dict[str, str] | None = None

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        self.details = details


class BadRequest(EmodriftError):
    code, status = "bad_request", 400


class InvalidId(BadRequest):
    code = "invalid_id"


class Unauthorized(EmodriftError):
    code, status = "unauthorized", 401
    headers = {"WWW-Authenticate": "ApiKey"}


class Forbidden(EmodriftError):
    code, status = "forbidden", 403


class NotFound(EmodriftError):
    code, status = "not_found", 404


class UserNotFound(NotFound):
    code = "user_not_found"


class WebhookNotFound(NotFound):
    code = "webhook_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class AlertNotFound(NotFound):
    code = "alert_not_found"


class Conflict(EmodriftError):
    code, status = "conflict", 409


class StateConflict(Conflict):
    code = "state_conflict"
    headers = {"Retry-After": "1"}  # a race with another writer: the same request succeeds shortly


class DeliveryNotReplayable(Conflict):
    code = "delivery_not_replayable"


class AlertResolved(Conflict):
    code = "alert_resolved"


class WebhookDisabled(Conflict):
    code = "webhook_disabled"


class MethodNotAllowed(EmodriftError):
    code, status = "method_not_allowed", 405


class ImageTooLarge(EmodriftError):
    code, status = "image_too_large", 413


class BatchTooLarge(EmodriftError):
    code, status = "batch_too_large", 413


class BodyTooLarge(EmodriftError):
    code, status = "body_too_large", 413


class BodyTimeout(EmodriftError):
    # a body trickled in a byte at a time holds its connection and memory for as long as the client likes
    code, status = "body_timeout", 408


class ClientClosedRequest(EmodriftError):
    # a client's doing, not a server error: a mobile upload cut off must not page anyone
    code, status = "client_closed_request", 499


class UnsupportedImage(EmodriftError):
    code, status = "unsupported_image", 415


class UnsupportedMediaType(EmodriftError):
    code, status = "unsupported_media_type", 415


class Unprocessable(EmodriftError):
    """Fields that do not validate. The same code and shape whoever finds the problem: FastAPI's request
    validation, a route that parses its own body (multipart, a batch), or the domain."""

    code, status = "validation_error", 422

    @classmethod
    def of(cls, problems: Sequence[Any]) -> Unprocessable:
        """From pydantic's errors (or dicts like them): ``loc`` the field's path, ``msg`` what is wrong.

        >>> err = Unprocessable.of([{"loc": ("body", "items", 0, "post_id"), "msg": "bad", "type": "x"}])
        >>> err.message, err.details
        ('body.items.0.post_id: bad', {'problems': [{'loc': ['body', 'items', '0', 'post_id'], 'msg': 'bad'}]})
        """
        listed = [{"loc": [str(p) for p in problem.get("loc", ())], "msg": problem.get("msg", "")}
                  for problem in problems]
        return cls(describe_problem(listed), problems=listed)

    @classmethod
    def at(cls, loc: Sequence[str | int], msg: str) -> Unprocessable:
        """One field's problem."""
        return cls.of([{"loc": loc, "msg": msg}])

    @staticmethod
    def given_twice(where: str, names: Sequence[str]) -> list[dict[str, Any]]:
        """The problems of the names given more than once (a form's fields, a query's parameters): the last
        one won, so an ambiguous value (a post id, a filter) was guessed (audits).

        >>> Unprocessable.given_twice("query", ["status", "limit", "status"])
        [{'loc': ('query', 'status'), 'msg': 'given more than once'}]
        """
        return [{"loc": (where, name), "msg": "given more than once"}
                for name, n in sorted(Counter(names).items()) if n > 1]


class CorruptImage(Unprocessable):
    code = "corrupt_image"


class ImageTooComplex(Unprocessable):
    code = "image_too_complex"


class OutOfOrder(Unprocessable):
    code = "out_of_order"


class InvalidWebhookUrl(Unprocessable):
    code = "invalid_webhook_url"


class Overloaded(EmodriftError):
    code, status = "overloaded", 429
    headers = {"Retry-After": "1"}


class RateLimited(Overloaded):
    code = "rate_limited"
    headers = {"Retry-After": "1"}  # what docs/errors.md says: each refusal sets its own, below

    def __init__(self, message: str = "", *, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, **details)
        self.headers = {"Retry-After": str(retry_after)}  # when the oldest request leaves the window (rate_limit.py)


class Unavailable(EmodriftError):
    code, status = "unavailable", 503
    headers = {"Retry-After": "2"}


class StoreUnavailable(Unavailable):
    code = "store_unavailable"


class ModelUnavailable(Unavailable):
    code = "model_unavailable"


class NotReady(Unavailable):
    code = "not_ready"


class EmbeddedRedisExited(Unavailable):
    code = "embedded_redis_exited"
    headers: dict[str, str] = {}  # no Retry-After: nothing brings it back, retrying does not help; a restart does


def kinds(root: type[EmodriftError] = EmodriftError) -> list[type[EmodriftError]]:
    """Every error class, ``root`` first, depth first: the tree above, which OpenAPI's descriptions list."""
    return [root] + [kind for child in root.__subclasses__() for kind in kinds(child)]


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


async def _emodrift_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EmodriftError)
    if exc.status >= 500:
        log_server_error(request, exc)
    return JSONResponse(
        error_body(exc.code, exc.message, **exc.details), status_code=exc.status, headers=exc.headers
    )


log = logging.getLogger("emodrift.errors")


def log_server_error(request: Request, exc: EmodriftError) -> None:
    """One warning line per 5xx answer: the runbook (deploy/README.md, EmodriftHighErrorRate) reads which
    code a failing route answers. The route's template, never the path (it holds user ids); a 4xx is the
    client's mistake and would be noise at every replica."""
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log.warning("%d %s on %s %s: %s", exc.status, exc.code, request.method, route, exc.message,
                extra={"status": exc.status, "code": exc.code, "route": route})


def describe_problem(errors: Sequence[Any]) -> str:
    """The first of pydantic's validation errors as one line: ``"field.path: what is wrong"``."""
    if not errors:
        return "invalid request"
    loc, msg = ".".join(str(p) for p in errors[0].get("loc", ())), errors[0].get("msg", "")
    return f"{loc}: {msg}" if loc else msg


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return await _emodrift_error(request, Unprocessable.of(exc.errors()))


# What Starlette itself refuses (routing; its form parser), as the error of the tree with that status.
HTTP_ERRORS: dict[int, type[EmodriftError]] = {400: BadRequest, 404: NotFound, 405: MethodNotAllowed}


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path. Starlette's 405 names only the methods of the first
    route that matched the path (GET /v1/users/{id}, not DELETE, another route of the same path). Each
    method is asked of the routes as the router would (a route's own ``matches``, included routers too)."""
    routes: list[BaseRoute] = request.app.router.routes
    return [method for method in METHODS
            if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)]


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
        message = f"{request.method} is not allowed here; this path takes {headers['Allow']}"
    else:
        message = str(exc.detail)
    kind = HTTP_ERRORS.get(exc.status_code)
    # a status no class of the tree has (none of our routes raises one): errors.md's opening names it
    code = kind.code if kind is not None else "http_error"
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers)


def unexpected(exc: Exception) -> EmodriftError:
    """A bug (no handler knew the exception) as the tree's root: the client reads the error envelope,
    never Starlette's plain text; the traceback goes to the log, never to the client."""
    return EmodriftError(f"unexpected {type(exc).__name__}; the service logged its traceback")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette calls this from its outermost middleware, then re-raises: the server logs the traceback
    return await _emodrift_error(request, unexpected(exc))


async def _client_disconnect(request: Request, exc: Exception) -> JSONResponse:
    return await _emodrift_error(request, ClientClosedRequest())


def install(app: FastAPI) -> None:
    """Register the handlers: one per exception family, looked up through the MRO by Starlette."""
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(EmodriftError, _emodrift_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
