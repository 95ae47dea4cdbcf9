"""/v1/alerts: list, read, acknowledge and resolve alerts.

Who may do what, once API keys are configured (service/access.py): every kind of key reads (an ingest
key can already read every user's state and timeline, which say more than an alert does); reviewer
and admin keys judge. A verdict is a person's decision and feeds the service's measured precision
(emodrift_alert_verdicts_total): the platform's ingest key, held by a machine that posts images,
should not be able to write one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.alerts.lifecycle import Direction, EventType, Status
from service.errors import InvalidId
from service.json_codec import FastJSONResponse
from service.routes.deps import ActingKey, AlertsDep, JsonBody, ReadKey, ReviewKey
from service.schemas import ID_PATTERN, ID_RULE, Alert, AlertList, ResolveRequest

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], dependencies=[ReadKey])

ALERT_ID = {"description": "the alert's id (its webhook-id)", "json_schema_extra": {
    "pattern": ID_PATTERN.pattern, "minLength": 1, "maxLength": 128}}


def _checked(value: str, name: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidId(f"{name} must be {ID_RULE}")
    return value


@router.get("", response_model=AlertList, summary="Alerts, newest first, filtered")
async def list_alerts(
    alerts: AlertsDep,
    status: Annotated[Status | None, Query()] = None,
    user_id: Annotated[str | None, Query(description=ID_RULE)] = None,
    type: Annotated[EventType | None, Query()] = None,
    backfill: Annotated[bool | None, Query(description="true: only alerts a backfill recorded; false: only live ones")] = None,
    direction: Annotated[Direction | None, Query(description="worse: only changes whose valence fell (to sadder, "
                                                 "angrier, more fearful moods); better: only those whose valence rose")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="the next_cursor of the previous page")] = None,
) -> FastJSONResponse:
    """A page may hold fewer than ``limit`` alerts when filters skip many: follow ``next_cursor``
    until it is null."""
    if user_id is not None:
        _checked(user_id, "user_id")
    found, next_cursor = await alerts.list(status=status, user_id=user_id, type=type, backfill=backfill,
                                           direction=direction, limit=limit, cursor=cursor)
    return FastJSONResponse({"alerts": found, "next_cursor": next_cursor})


@router.get("/{alert_id}", response_model=Alert, summary="One alert")
async def get_alert(alert_id: Annotated[str, Path(**ALERT_ID)], alerts: AlertsDep) -> FastJSONResponse:
    return FastJSONResponse(await alerts.get(_checked(alert_id, "alert_id")))


@router.post("/{alert_id}/acknowledge", response_model=Alert, dependencies=[ReviewKey],
             summary="Someone is looking at it (review scope); again: unchanged")
async def acknowledge_alert(alert_id: Annotated[str, Path(**ALERT_ID)], alerts: AlertsDep,
                            by: ActingKey) -> FastJSONResponse:
    return FastJSONResponse(await alerts.acknowledge(_checked(alert_id, "alert_id"), by))


@router.post("/{alert_id}/resolve", response_model=Alert, dependencies=[ReviewKey, JsonBody],
             summary="Judge it with a verdict (review scope); the same verdict and note again: unchanged; "
             "with replaces: another verdict replaces the one recorded")
async def resolve_alert(alert_id: Annotated[str, Path(**ALERT_ID)], body: ResolveRequest,
                        alerts: AlertsDep, by: ActingKey) -> FastJSONResponse:
    return FastJSONResponse(await alerts.resolve(_checked(alert_id, "alert_id"), body.verdict, body.note, by,
                                                 replaces=body.replaces))
