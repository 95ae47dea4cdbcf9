"""What the OpenAPI document promises beyond each route: readable operation ids, the API-key
security schemes, and named schemas for the request bodies the routes read by hand.

Client generators (openapi-python-client, openapi-generator) name their functions after the
operation ids and their authentication after the security schemes, so both are part of the contract
(tests/test_client_generation.py generates a client from the served schema and uses it).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service import access


def camel(name: str) -> str:
    """A Python name as an operation id.

    >>> camel("post_image"), camel("list_alerts"), camel("healthz")
    ('postImage', 'listAlerts', 'healthz')
    """
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def operation_id(route: APIRoute) -> str:
    """Every operation id comes from here (the app's ``generate_unique_id_function``): the route's
    name, which is its handler's name unless the route sets ``name=``, in camelCase."""
    return camel(route.name)


# Declared on every route that needs a key (service/routes/deps.py): either one is accepted. They do not
# answer 401 themselves (auto_error=False): the scope check does, with the service's error shape.
BEARER = HTTPBearer(
    scheme_name="bearerAuth", auto_error=False,
    description="`Authorization: Bearer <key>`, a key of one kind: "
                + "; ".join(f"{kind} ({access.env_name(kind)}): {', '.join(scopes)}" for kind, scopes in access.KINDS.items())
                + ". Each operation's security requirement names the scopes it needs. Not needed while no key is configured.")
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", scheme_name="apiKeyHeader", auto_error=False,
    description="The same keys in an `X-API-Key` header, for clients that cannot set Authorization.")


# Request bodies the routes read by hand (for speed, service/routes/posts.py) are documented through
# openapi_extra. A schema inlined there makes generators invent names ("PostObservationObservationJson");
# a $ref to a named component gives them the model's own name. The components are added by install().
_BODIES: dict[str, type[BaseModel] | dict[str, Any]] = {}


def request_body(media_type: str, model: type[BaseModel] | None = None, *,
                 name: str | None = None, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` declaring a required body of ``media_type``: a pydantic ``model``, or a plain
    JSON ``schema`` under ``name``."""
    key = model.__name__ if model is not None else name
    body = model if model is not None else schema
    assert key and body is not None
    _BODIES[key] = body
    return {"requestBody": {"required": True,
                            "content": {media_type: {"schema": {"$ref": f"#/components/schemas/{key}"}}}}}


def install(app: FastAPI) -> None:
    """Add the hand-read request bodies to the app's OpenAPI components (once, when first served)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        models = [value for value in _BODIES.values() if not isinstance(value, dict)]
        _, defs = models_json_schema([(model, "validation") for model in models],
                                     ref_template="#/components/schemas/{model}")
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(defs.get("$defs", {}))
        schemas.update({key: value for key, value in _BODIES.items() if isinstance(value, dict)})
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook for a custom schema
