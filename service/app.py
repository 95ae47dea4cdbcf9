"""create_app(): the lifespan builds every client (Redis, ONNX sessions, batcher, face detector)."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from service import errors, images, metrics, model_repository, openapi, schemas
from service.alerts import routes as alerts
from service.alerts.store import AlertStore
from service.batching import MicroBatcher
from service.config import Settings, get_settings
from service.embedded_redis import die_with_parent
from service.erasure import Eraser
from service.faces import BlazeFaceDetector
from service.inference import EmotionModel, ProviderChoice, choose_provider
from service.body_limit import BodyLimit
from service.cluster_client import ClusterClient
from service.middleware import RequestMetrics
from service.pipeline import Pipeline
from service.rate_limit import RateLimiter
from service.routes import docs, ops, posts, users, webhooks
from service.routes.deps import KnownQuery
from service.state_store import StateStore
from service.temporal import TemporalModel
from service.ui import routes as ui
from service.webhooks.deliveries import Deliveries
from service.webhooks import payloads
from service.webhooks.dispatcher import STOP_TIMEOUT_SECONDS, Dispatcher
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
        return ClusterClient.from_url(settings.redis_url, max_connections=settings.redis_max_connections,
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
    app = FastAPI(
        title="emodrift",
        version="0.1.0",
        summary="Watches each user's image posts and raises an alert when their emotional pattern drifts.",
        lifespan=lifespan,
        responses=schemas.ERROR_RESPONSES,  # every error is an ErrorBody, not FastAPI's default 422 shape
        generate_unique_id_function=openapi.operation_id,
        docs_url=None, redoc_url=None,  # served from local files below, not a CDN
        # Starlette answered a path with a trailing slash with a 307 to an absolute http:// URL built from
        # the Host header, without the /ui headers; a browser re-sends a POST's body there, an API key
        # from the sign-in form included, in the clear behind a TLS proxy. Such a path is a 404 instead.
        redirect_slashes=False,
        dependencies=[KnownQuery],  # an unknown query parameter is a 422, not ignored (deps.known_query)
    )
    app.state.settings = settings or get_settings()
    app.state.pipeline = None
    errors.install(app)
    routers = (posts.router, users.router, alerts.router, webhooks.router, ops.router)
    # inside RequestMetrics: its 413s and 499s are counted, labelled with the route they were for
    app.add_middleware(BodyLimit, own_limits=posts.router, routers=(*routers, *ui.ROUTERS))
    app.add_middleware(RequestMetrics)
    for router in routers:
        app.include_router(router)
        _errors_from_zero(router)
    ui.install(app)  # the page for people at /ui (its own sign-in, cookie and CSRF handling)
    app.webhooks.include_router(payloads.router)  # documented in the OpenAPI `webhooks` section, never served
    docs.install(app)
    openapi.install(app)
    return app


def _errors_from_zero(router: APIRouter) -> None:
    """Each API route's 5xx series from 0 (metrics.from_zero): born at its first count, an outage's first
    errors were no increase to the error-rate alert's rate() (an on-call re-audit)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            metrics.from_zero(metrics.HTTP_REQUESTS, route.methods or (), [route.path], ["5xx"])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Builds every client of the app (``start``). Each is registered with the exit stack as soon as it
    exists, so a start-up step that fails closes what the steps before it built, in reverse order, as
    shutdown does."""
    async with AsyncExitStack() as stack:
        await start(app, app.state.settings, stack)
        # What is built by now lives as long as the process (models, sessions, routes, schemas): keep
        # it out of the collector's full passes, which otherwise walk it all and stall requests.
        gc.freeze()
        yield


async def start(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> None:
    """Redis, the models, the batcher, the pipeline, its background tasks, then the webhooks."""
    if not settings.redis_url:
        raise RuntimeError("EMODRIFT_REDIS_URL is not set (`emodrift serve` starts an embedded Redis)")
    follow_supervisor()
    redis = connect_redis(settings)
    stack.push_async_callback(redis.aclose)
    choice = choose_provider(settings.provider)
    emotion, temporal, shadow = load_models(settings, choice)
    batcher = MicroBatcher(emotion, provider=choice.provider, max_batch=settings.max_batch_size,
                           max_wait_ms=settings.max_batch_wait_ms, max_queue=settings.max_queue)
    stack.push_async_callback(batcher.stop)
    await batcher.start()
    store = state_store(redis, settings)
    pipeline = Pipeline(settings, store, batcher, temporal, face_detector(settings), emotion.artifact.tag, shadow)
    stack.callback(retire, app, pipeline)
    app.state.store, app.state.emotion_model, app.state.pipeline = store, emotion, pipeline
    app.state.alerts = AlertStore(redis, store.relay.alerts, calibration=pipeline.live)
    background(stack, store.relay.run_sweeper(settings.outbox_sweep_seconds), "outbox-sweeper")
    await pipeline.live.sync_at_start(settings.redis_timeout_seconds)  # the stored scales from the first post
    # LIFO: the background task is cancelled first, then the last counts are sent
    stack.push_async_callback(pipeline.live.sync_at_stop, settings.redis_timeout_seconds)
    background(stack, pipeline.live.run(settings.calibration_sync_seconds), "live-calibration")
    app.state.rate_limiter = RateLimiter(redis, settings.rate_limit_per_second) if settings.rate_limit_per_second else None
    await start_webhooks(app, settings, redis, store, stack)
    # started, not ready: whether Redis answers is /readyz's (emodrift_ready), now and later
    log.info("emodrift started: %s on %s (%s)", emotion.artifact.tag, choice.provider, choice.reason)


def load_models(settings: Settings, choice: ProviderChoice) -> tuple[EmotionModel, TemporalModel, TemporalModel | None]:
    """The emotion CNN, the served temporal model and the shadow one (when configured)."""
    emotion = EmotionModel(
        model_repository.load(settings.model_repository, settings.emotion_model, settings.emotion_model_version),
        choice, settings.intra_op_threads)
    temporal = TemporalModel(
        model_repository.load(settings.model_repository, settings.temporal_model, settings.temporal_model_version),
        choice)
    shadow = None if settings.shadow_temporal_model_version is None else TemporalModel(
        model_repository.load(settings.model_repository, settings.temporal_model,
                              settings.shadow_temporal_model_version), choice)
    loaded = [("emotion", emotion.artifact, choice.provider), ("temporal", temporal.artifact, "cpu")]
    for role, artifact, provider in loaded + ([] if shadow is None else [("shadow", shadow.artifact, "cpu")]):
        metrics.MODEL_INFO.labels(role, artifact.name, str(artifact.version), provider).set(1)
    return emotion, temporal, shadow


def state_store(redis: aioredis.Redis, settings: Settings) -> StateStore:
    return StateStore(redis, outbox=settings.outbox_stream, outbox_maxlen=settings.outbox_maxlen,
                      timeline_length=settings.timeline_length, idempotency_ttl=settings.idempotency_ttl_seconds,
                      cache_users=settings.state_cache_users, retention_seconds=settings.user_retention_seconds,
                      alerts_per_user=settings.alerts_per_user,
                      relay_lease_seconds=settings.relay_lease_seconds,
                      slot_retry_seconds=settings.redis_cluster_retry_seconds)


def retire(app: FastAPI, pipeline: Pipeline) -> None:
    """No new post reaches the pipeline (they are answered "starting"); its decode threads stop."""
    app.state.pipeline = None
    pipeline.close()


def background(stack: AsyncExitStack, work: Coroutine[Any, Any, None], name: str) -> None:
    """Runs ``work`` as a task until the app stops (cancelled then, and awaited a bounded time)."""
    task = asyncio.create_task(work, name=name)

    async def cancel() -> None:
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_TIMEOUT_SECONDS)

    stack.push_async_callback(cancel)


async def start_webhooks(app: FastAPI, settings: Settings, redis: aioredis.Redis, store: StateStore,
                         stack: AsyncExitStack) -> None:
    """Subscriptions, deliveries, erasure and the dispatcher that sends the outbox's events."""
    # One client for every webhook attempt; trust_env=False: no proxy taken from the environment.
    http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False)
    stack.push_async_callback(http.aclose)
    app.state.webhooks = Subscriptions(redis)
    app.state.deliveries = Deliveries(redis, retention_seconds=settings.webhook_delivery_retention_seconds)
    app.state.dispatcher = Dispatcher(redis, http, settings, app.state.webhooks, app.state.deliveries)
    app.state.eraser = Eraser(store, app.state.alerts, app.state.webhooks, app.state.deliveries,
                              consumer_group=settings.webhook_consumer_group,
                              attempt_lease_seconds=app.state.dispatcher.lease,
                              tombstone_seconds=settings.erasure_tombstone_seconds)
    stack.push_async_callback(app.state.dispatcher.stop)
    await app.state.dispatcher.start()
