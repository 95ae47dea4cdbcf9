"""A user's current drift state, timeline, and erasure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from service import timeline_svg
from service.errors import UserNotFound
from service.json_codec import FastJSONResponse
from service.transition import as_distribution
from service.timestamps import iso_time
from service.routes.deps import AdminKey, PipelineDep, ReadKey, StoreDep, UserId
from service.schemas import TimelineView, UserView

router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[ReadKey])


@router.get("/{user_id}", response_model=UserView, summary="Drift score, status, baseline and recent emotions")
async def get_user(user_id: UserId, store: StoreDep, pipeline: PipelineDep) -> dict[str, Any]:
    state = await store.load(user_id)
    if state is None:
        raise UserNotFound(f"no posts for user {user_id}")
    return {
        "user_id": user_id,
        "drift": {"score": round(state.score, 6), "status": state.detector.get("status", "warming_up"),
                  "posts_seen": state.posts_seen},
        "baseline": as_distribution(state.baseline),
        "recent": as_distribution(state.recent),
        "last_alert": await store.last_alert(user_id),
        "model_versions": {"emotion_cnn": pipeline.model_versions["emotion_cnn"], "temporal": state.model},
        "last_post_at": iso_time(state.last_ts) if state.last_ts is not None else None,
    }


@router.get("/{user_id}/timeline", response_model=TimelineView, summary="Recent post results, oldest first")
async def get_timeline(user_id: UserId, store: StoreDep,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> FastJSONResponse:
    posts = await store.timeline(user_id, limit)
    if not posts and await store.load(user_id) is None:
        raise UserNotFound(f"no posts for user {user_id}")
    # as stored, not validated again (the schema documents it): entries written by earlier versions answer too
    return FastJSONResponse({"user_id": user_id, "posts": posts})


@router.get("/{user_id}/timeline.svg", response_class=Response, summary="A picture of the user's recent posts",
            # a schema, or a generated client answers parsed=None (an integrator's audit): bytes, for one told
            # to read SVG as octet-stream (docs/api.md)
            responses={200: {"content": {"image/svg+xml": {"schema": {"type": "string", "format": "binary"}}}}})
async def get_timeline_svg(user_id: UserId, store: StoreDep, pipeline: PipelineDep,
                           limit: Annotated[int, Query(ge=1, le=1000)] = timeline_svg.POSTS) -> Response:
    posts = await store.timeline(user_id, limit)
    if not posts:
        raise UserNotFound(f"no posts for user {user_id}")
    return Response(await pipeline.picture(user_id, posts), media_type="image/svg+xml")


@router.delete("/{user_id}", status_code=204, summary="Erase every key of this user (admin)",
               dependencies=[AdminKey])
async def delete_user(user_id: UserId, request: Request) -> None:
    # service/erasure.py: the user's keys, their alerts in the outbox and every delivery made from
    # them, with whatever was in flight waited for, so nothing is delivered after the 204
    if not await request.app.state.eraser.erase(user_id):
        raise UserNotFound(f"no posts for user {user_id}")
