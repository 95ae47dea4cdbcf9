"""Typed dependencies: what a handler needs, taken from the app state built in the lifespan."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request

from service.config import Settings
from service.errors import InvalidId, ModelUnavailable, Unauthorized
from service.pipeline import Pipeline
from service.schemas import ID_PATTERN, ID_RULE
from service.state_store import StateStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_pipeline(request: Request) -> Pipeline:
    pipeline = getattr(request.app.state, "pipeline", None)
    if pipeline is None:
        raise ModelUnavailable("the service is starting")
    return pipeline


def get_store(request: Request) -> StateStore:
    return request.app.state.store


def require_api_key(request: Request) -> None:
    """Once keys are configured, ingestion and admin need one: ``X-API-Key`` or ``Authorization: Bearer``."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not given or not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise Unauthorized("missing or invalid API key (send X-API-Key)")


def user_id_param(user_id: Annotated[str, Path(description=ID_RULE)]) -> str:
    if not ID_PATTERN.fullmatch(user_id):
        raise InvalidId(f"user_id must be {ID_RULE}")
    return user_id


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
StoreDep = Annotated[StateStore, Depends(get_store)]
UserId = Annotated[str, Depends(user_id_param)]
ApiKey = Depends(require_api_key)
