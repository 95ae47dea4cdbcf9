"""Liveness, readiness, metrics and what model is loaded."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service import calibration, metrics
from service.drift import DetectorConfig
from service.embedded_redis import exited
from service.errors import EmbeddedRedisExited, EmodriftError, NotReady
from service.state_store import guarded
from service.routes.deps import AdminKey, PipelineDep

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is alive (and the embedded Redis it relies on, when there is one)")
async def healthz(request: Request) -> JSONResponse:
    # Only the embedded redis-server's *process* counts: nothing restarts it, so a liveness failure is
    # the way back. An external Redis that is slow or away is /readyz's business: restarting every
    # replica for it would bring it back no sooner.
    pid = request.app.state.settings.embedded_redis_pid
    if pid is not None and exited(pid):
        raise EmbeddedRedisExited(f"the embedded redis-server (pid {pid}) has exited: restart `emodrift serve`")
    return JSONResponse({"status": "ok"})


async def readiness(request: Request) -> tuple[dict[str, bool], list[str]]:
    """What /readyz checks, also exported as ``emodrift_ready``: an unready pod gets no traffic, so
    nothing else it exports would show a Redis outage. The checks, and why each failing one fails."""
    pipeline = getattr(request.app.state, "pipeline", None)
    store = getattr(request.app.state, "store", None)
    why = {"model": None if pipeline is not None else "models not loaded",
           "redis": "starting" if store is None else await store.unready()}
    checks = {name: reason is None for name, reason in why.items()}
    metrics.READY.set(1 if all(checks.values()) else 0)
    return checks, [f"{name} ({reason})" for name, reason in why.items() if reason is not None]


@router.get("/readyz", summary="Models loaded and Redis reachable")
async def readyz(request: Request) -> JSONResponse:
    checks, failing = await readiness(request)
    if not failing:
        return JSONResponse({"status": "ready", "checks": checks})
    raise NotReady(f"not ready: {', '.join(failing)}", checks=checks)


# How long a scrape waits for its Redis readings. A hung Redis answers nothing until the client's timeout
# (EMODRIFT_REDIS_TIMEOUT_SECONDS): a scrape that waited for it would fail at a scrape timeout at or under
# that, and EmodriftDown would stand for EmodriftNotReady. Readings not back in time land for the next scrape.
SCRAPE_WAITS_FOR_REDIS_SECONDS = 0.5


@router.get("/metrics", summary="Prometheus exposition", response_class=Response, name="get_metrics")
async def prometheus(request: Request) -> Response:
    # checked at every scrape: the probes may all land on another worker
    state = request.app.state
    readings: asyncio.Task[None] | None = getattr(state, "scrape_readings", None)
    if readings is None or readings.done():
        readings = state.scrape_readings = asyncio.create_task(redis_readings(request), name="scrape-readings")
    await asyncio.wait({readings}, timeout=SCRAPE_WAITS_FOR_REDIS_SECONDS)
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)


async def redis_readings(request: Request) -> None:
    """Readiness (``emodrift_ready``) and the users drifting, a cluster-wide figure read at scrape time."""
    store = getattr(request.app.state, "store", None)
    if (await readiness(request))[0]["redis"] and store is not None:
        try:
            metrics.USERS_DRIFTING.set(await guarded(store.relay.drifting()))
        except EmodriftError:
            pass


@router.get("/v1/model", summary="Loaded models, execution provider, batching and detector settings (admin)",
            dependencies=[AdminKey], name="get_model")
async def model_info(request: Request, pipeline: PipelineDep) -> dict[str, Any]:
    emotion = request.app.state.emotion_model
    settings = request.app.state.settings
    return {
        "emotion_cnn": _describe(emotion.artifact.manifest, emotion.artifact.tag),
        "temporal": {**_describe(pipeline.temporal.artifact.manifest, pipeline.temporal.artifact.tag),
                     "engine": pipeline.temporal.engine},  # numpy, or onnxruntime when they disagreed
        "provider": {"name": emotion.provider.provider, "reason": emotion.provider.reason,
                     "onnxruntime": emotion.session.get_providers()},
        "face_detector": pipeline.face_detector.name,
        "batching": {"max_batch_size": settings.max_batch_size, "max_batch_wait_ms": settings.max_batch_wait_ms,
                     "queue_depth": pipeline.batcher.depth, "batches": pipeline.batcher.batches},
        "detector": {**detector_view(pipeline.detector_config),
                     "calibration": calibration.describe(pipeline.temporal.artifact.manifest,
                                                         calibration.overrides(settings))},
        # the candidate beside the served model and how the two compare (docs/shadow.md); null: none
        "shadow": None if pipeline.shadow is None else pipeline.shadow.report(pipeline.temporal.artifact.tag),
        "live_calibration": pipeline.live.describe(),
    }


def detector_view(config: DetectorConfig) -> dict[str, Any]:
    """The detector's settings, its score profile by id (the profile's 3000 numbers are in the temporal
    manifest; asdict would copy them all only to drop them)."""
    view = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "profile"}
    return {**view, "profile": config.profile_id or None}


def _describe(manifest: dict[str, Any], tag: str) -> dict[str, Any]:
    keep = ("name", "version", "sha256", "labels", "source", "parity", "exported_at")
    return {"tag": tag, **{k: manifest[k] for k in keep if k in manifest}}
