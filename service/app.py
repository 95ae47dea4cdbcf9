"""create_app(): the lifespan builds every client (Redis, ONNX sessions, batcher, face detector)."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from fastapi import FastAPI

from service import errors, images, metrics, model_repository, openapi, schemas
from service.alerts import routes as alerts
from service.alerts.store import AlertStore
from service.batching import MicroBatcher
from service.config import Settings, get_settings
from service.embedded_redis import die_with_parent
from service.erasure import Eraser
from service.faces import BlazeFaceDetector
from service.inference import EmotionModel, choose_provider
from service.middleware import RequestMetrics
from service.pipeline import Pipeline
from service.rate_limit import RateLimiter
from service.routes import docs, ops, posts, users, webhooks
from service.state_store import StateStore
from service.temporal import TemporalModel
from service.ui import routes as ui
from service.webhooks.deliveries import Deliveries
from service.webhooks import payloads
from service.webhooks.dispatcher import Dispatcher
from service.webhooks.subscriptions import Subscriptions

log = logging.getLogger("emodrift")


def face_detector(settings: Settings) -> images.Detector:
    if settings.face_detector == "haar":
        return images.FaceDetector()
    return BlazeFaceDetector(model_repository.load(settings.model_repository, "face_detector"))


def connect_redis(settings: Settings) -> aioredis.Redis:
    """One client per process; a cluster client routes each user's keys (one hash slot) to its node."""
    assert settings.redis_url
    timeouts = {"socket_timeout": settings.redis_timeout_seconds,
                "socket_connect_timeout": settings.redis_timeout_seconds}
    if settings.redis_cluster:
        # reinitialize_steps=0: on MOVED, patch the one slot's owner; redis-py's default closes every
        # connection each 5th MOVED, under the requests writing on them (500s while slots move)
        # ignore: RedisCluster serves the same commands without subclassing Redis
        return RedisCluster.from_url(settings.redis_url, max_connections=settings.redis_max_connections,
                                     reinitialize_steps=0, **timeouts)  # type: ignore[return-value]
    # a blocking pool: past max_connections a command waits for a free one instead of failing at once
    # (redis-py's default pool refuses past 100: a batch of 256 users' posts got 503s)
    return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, health_check_interval=10, max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_seconds, **timeouts))


def follow_supervisor() -> None:
    """In a worker of `emodrift serve --workers N`: end with the supervisor, even a SIGKILLed one (an
    orphan kept retrying its vanished Redis, holding CPU and the port). A supervisor that died before
    this ran (a worker still starting when it was killed) is caught by the parent check after it."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    die_with_parent()
    if os.getppid() != parent.pid:
        raise RuntimeError("the `emodrift serve` supervisor is gone; this worker stops")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.redis_url:
            raise RuntimeError("EMODRIFT_REDIS_URL is not set (`emodrift serve` starts an embedded Redis)")
        follow_supervisor()
        redis = connect_redis(settings)
        choice = choose_provider(settings.provider)
        emotion = EmotionModel(
            model_repository.load(settings.model_repository, settings.emotion_model, settings.emotion_model_version),
            choice, settings.intra_op_threads)
        temporal = TemporalModel(
            model_repository.load(settings.model_repository, settings.temporal_model, settings.temporal_model_version),
            choice)
        shadow = None if settings.shadow_temporal_model_version is None else TemporalModel(
            model_repository.load(settings.model_repository, settings.temporal_model,
                                  settings.shadow_temporal_model_version), choice)
        for artifact, provider in ((emotion.artifact, choice.provider), (temporal.artifact, "cpu")):
            metrics.MODEL_INFO.labels(artifact.name, str(artifact.version), provider).set(1)
        batcher = MicroBatcher(emotion, provider=choice.provider, max_batch=settings.max_batch_size,
                               max_wait_ms=settings.max_batch_wait_ms, max_queue=settings.max_queue)
        await batcher.start()
        store = StateStore(redis, outbox=settings.outbox_stream, outbox_maxlen=settings.outbox_maxlen,
                           timeline_length=settings.timeline_length, idempotency_ttl=settings.idempotency_ttl_seconds,
                           cache_users=settings.state_cache_users, retention_seconds=settings.user_retention_seconds,
                           alerts_per_user=settings.alerts_per_user,
                           relay_lease_seconds=settings.relay_lease_seconds,
                           slot_retry_seconds=settings.redis_cluster_retry_seconds)
        pipeline = Pipeline(settings, store, batcher, temporal, face_detector(settings), emotion.artifact.tag,
                            shadow)
        app.state.store, app.state.emotion_model, app.state.pipeline = store, emotion, pipeline
        app.state.alerts = AlertStore(redis, store.relay.alerts)
        sweeper = asyncio.create_task(store.relay.run_sweeper(settings.outbox_sweep_seconds), name="outbox-sweeper")
        calibrating = asyncio.create_task(pipeline.live.run(settings.calibration_sync_seconds), name="live-calibration")
        app.state.rate_limiter = RateLimiter(redis, settings.rate_limit_per_second) if settings.rate_limit_per_second else None
        # One client for every webhook attempt; trust_env=False: no proxy taken from the environment.
        http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False)
        app.state.webhooks = Subscriptions(redis)
        app.state.deliveries = Deliveries(redis, retention_seconds=settings.webhook_delivery_retention_seconds)
        app.state.dispatcher = Dispatcher(redis, http, settings, app.state.webhooks, app.state.deliveries)
        app.state.eraser = Eraser(store, app.state.alerts, app.state.webhooks, app.state.deliveries,
                                  consumer_group=settings.webhook_consumer_group,
                                  attempt_lease_seconds=app.state.dispatcher.lease,
                                  tombstone_seconds=settings.erasure_tombstone_seconds)
        await app.state.dispatcher.start()
        log.info("emodrift ready: %s on %s (%s)", emotion.artifact.tag, choice.provider, choice.reason)
        # What is built by now lives as long as the process (models, sessions, routes, schemas): keep
        # it out of the collector's full passes, which otherwise walk it all and stall requests.
        gc.freeze()
        try:
            yield
        finally:
            sweeper.cancel()
            calibrating.cancel()
            await app.state.dispatcher.stop()
            await http.aclose()
            app.state.pipeline = None
            await batcher.stop()
            pipeline.close()
            await redis.aclose()

    app = FastAPI(
        title="emodrift",
        version="0.1.0",
        summary="Watches each user's image posts and raises an alert when their emotional pattern drifts.",
        lifespan=lifespan,
        responses=schemas.ERROR_RESPONSES,  # every error is an ErrorBody, not FastAPI's default 422 shape
        generate_unique_id_function=openapi.operation_id,
        docs_url=None, redoc_url=None,  # served from local files below, not a CDN
    )
    app.state.settings = settings
    app.state.pipeline = None
    errors.install(app)
    app.add_middleware(RequestMetrics)
    for router in (posts.router, users.router, alerts.router, webhooks.router, ops.router):
        app.include_router(router)
    ui.install(app)  # the page for people at /ui (its own sign-in, cookie and CSRF handling)
    app.webhooks.include_router(payloads.router)  # documented in the OpenAPI `webhooks` section, never served
    docs.install(app)
    openapi.install(app)
    return app
