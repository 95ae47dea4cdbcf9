"""What a person gets when a request under /ui fails: a page, with the headers of every /ui response.

The app's error handlers (service/errors.py) answer JSON, the API's contract. Whoever finds the
problem under /ui (the router: no such page, not this method; the request's validation: a query too
long; a route: an alert or user id that is not one; a bug: any other exception) raises the same exceptions, so this wraps those
handlers: a request under /ui gets error.html with its status (and ``Allow``, ``Retry-After``), any
other the API's JSON as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import errors
from service.ui import pages

Handler = Callable[[Request, Any], Response | Awaitable[Response]]  # as Starlette keeps them

TITLES = {400: "Bad link", 404: "Not found", 405: "Not here", 422: "Bad link", 429: "Too many requests",
          500: "Something went wrong", 503: "Unavailable"}


def install(app: FastAPI) -> None:
    """After errors.install: wraps its handler of each exception family."""
    for family in (Exception, errors.EmodriftError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(family, _for_people(app.exception_handlers[family]))


def _for_people(api: Handler) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if pages.under_ui(request):
            return page(request, exc)
        answer = api(request, exc)
        return await answer if inspect.isawaitable(answer) else answer
    return handler


def page(request: Request, exc: Exception) -> Response:
    headers: dict[str, str] = {}
    if not isinstance(exc, (errors.EmodriftError, RequestValidationError, StarletteHTTPException)):
        exc = errors.unexpected(exc)  # a bug: the page says so, the log has the traceback
    if isinstance(exc, errors.EmodriftError):
        status, message, headers = exc.status, exc.message, dict(exc.headers or {})
        if status >= 500:  # logged as the API's are: the runbook reads the codes of every 5xx
            errors.log_server_error(request, exc)
    elif isinstance(exc, RequestValidationError):
        status, message = 422, errors.Unprocessable.of(exc.errors()).message
    else:
        assert isinstance(exc, StarletteHTTPException)
        status, headers = exc.status_code, dict(exc.headers or {})
        message = "There is no page at this address." if status == 404 else str(exc.detail)
        if status == 405:
            headers["Allow"] = ", ".join(errors.allowed_methods(request))
            message = f"This address does not answer {request.method}: it takes {headers['Allow']}."
    response = pages.render(request, "error.html", status_code=status, title=TITLES.get(status, "Error"),
                            message=message)
    response.headers.update(headers)
    return response
