"""Every Prometheus metric the service exports, in one place, with units in names and explicit buckets.

Labels are bounded: route templates, status classes, providers, outcomes — never a user or post id.
When uvicorn runs several workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``emodrift serve`` does) and
``/metrics`` aggregates every process. Every gauge counts live processes only (``live*`` modes), and
each scrape removes the gauges of workers that died (``mark_process_dead``): a SIGKILLed worker's last
values (outbox age, backlog, users drifting, queue depth) otherwise stayed until restart, and alerts
kept firing on a ghost. Counters and histograms of a dead worker stay: they are totals.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

# A single process would also expose a ``*_created`` series per counter and histogram (the time it
# was created); multi-process aggregation (``serve --workers 2``) never does: the same names whatever
# the worker count, as docs/metrics.md lists them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

# Edges at the latency objectives: 50 ms (p50 target) and 250 ms (p99 target) per post.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

HTTP_REQUESTS = Counter(
    "emodrift_http_requests_total", "HTTP requests by route and status class", ["method", "route", "status_class"]
)
HTTP_LATENCY = Histogram(
    "emodrift_http_request_duration_seconds", "HTTP request latency", ["method", "route"], buckets=LATENCY_BUCKETS
)
POSTS = Counter("emodrift_posts_total", "posts processed", ["source", "outcome"])
FACES = Counter("emodrift_faces_total", "images by whether a face was found", ["detected"])
PREPROCESS_LATENCY = Histogram(
    "emodrift_preprocess_duration_seconds", "decode + face crop per image, from its decoding slot", buckets=LATENCY_BUCKETS
)
# apart from the decode itself (an on-call audit saw "Preprocessing" p99 at 4.9 s, mostly waiting, read as
# "large images"): saturated CPUs inflate both; the decode rising without the wait points at large images
DECODE_WAIT = Histogram(
    "emodrift_decode_wait_seconds", "time an image waits for a decoding slot (its batch's turn included)",
    buckets=LATENCY_BUCKETS)
IMAGES_OVER_BUDGET = Counter(
    "emodrift_images_over_budget_total", "images answered 422 because decoding outran image_budget_seconds")
BATCH_SIZE = Histogram("emodrift_inference_batch_size", "images per CNN call", ["provider"], buckets=BATCH_BUCKETS)
INFERENCE_LATENCY = Histogram(
    "emodrift_inference_duration_seconds", "CNN call latency", ["provider"], buckets=FAST_BUCKETS + (0.25, 0.5)
)
QUEUE_WAIT = Histogram("emodrift_batch_queue_wait_seconds", "time an image waits for its batch", buckets=FAST_BUCKETS)
QUEUE_DEPTH = Gauge("emodrift_batch_queue_depth", "images waiting for inference", multiprocess_mode="livesum")
BATCH_DROPPED = Counter("emodrift_batch_dropped_total", "queued images dropped because the caller left")
STATE_CONFLICTS = Counter("emodrift_state_cas_conflicts_total", "compare-and-set retries on user state")
SLOT_MOVED_RETRIES = Counter("emodrift_redis_slot_moved_retries_total",
                             "Redis calls run again because their Cluster slot was moving (TRYAGAIN, ASK, MOVED)")
# Redis up, refusing writes (state_store.REFUSALS: out_of_memory, read_only, cannot_persist): every post fails
REDIS_REFUSALS = Counter("emodrift_redis_write_refusals_total", "Redis calls refused by a Redis that answers: its "
                         "memory full, a read-only replica, a failed save (503 store_unavailable)", ["reason"])
STATE_RESETS = Counter("emodrift_state_model_resets_total", "LSTM states discarded: written by another model")
STATE_LATENCY = Histogram(
    "emodrift_state_update_duration_seconds", "load + step + atomic write of one user", buckets=FAST_BUCKETS
)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
DRIFT_SCORE = Histogram("emodrift_drift_score", "drift score of each post", buckets=SCORE_BUCKETS)
# The shadow temporal model (service/shadow.py), compared with the served one; `model` is the role,
# served or shadow (emodrift_shadow_info names their versions), so a promotion does not break a panel.
TEMPORAL_SCORE = Histogram(
    "emodrift_temporal_score", "drift score of each post by temporal model, while a shadow runs", ["model"],
    buckets=SCORE_BUCKETS)
TEMPORAL_ALARMS = Counter(
    "emodrift_temporal_alarms_total", "drift.started by temporal model while a shadow runs (the shadow's are never sent)",
    ["model"])
SHADOW_EPISODES = Counter(
    "emodrift_shadow_episodes_total", "drift episodes by agreement: both models drifting together, or one only",
    ["agreement"])  # both, only_served, only_shadow
SHADOW_INFO = Gauge("emodrift_shadow_info", "the served and the shadow temporal model", ["served", "shadow"],
                    multiprocess_mode="livemax")
SHADOW_RESETS = Counter("emodrift_shadow_state_resets_total", "shadow states started afresh (a user new to the shadow)")
STATE_PROMOTIONS = Counter(
    "emodrift_state_promotions_total", "served states taken over from the shadow slot: a promotion without a cold start "
    "(counted per step computed: one recomputed after a compare-and-set conflict counts again)")
# Set at every /readyz probe and every scrape. When Redis is down every pod fails /readyz, the Service
# drops them all and no request reaches one: no 5xx is counted and `up` stays 1, so only this says so.
# The scraped worker has just checked, hence the most recent value across workers.
READY = Gauge("emodrift_ready", "1 when this replica is ready (models loaded and Redis reachable, as /readyz), "
              "else 0", multiprocess_mode="livemostrecent")
# read from Redis at each scrape by the worker that answers it, the others' values older: the most recent
# (livemax kept another worker's stale figure: Prometheus's one connection always reaches the same worker)
USERS_DRIFTING = Gauge("emodrift_users_drifting", "users currently drifting (from Redis)",
                       multiprocess_mode="livemostrecent")
# live calibration (service/calibration.py): `age` is one of a fixed handful of user-age buckets
CALIBRATION_SCALE = Gauge(
    "emodrift_calibration_scale", "factor on the manifest's thresholds in force, by user-age bucket (1: the manifest's)",
    ["age"], multiprocess_mode="livemax")
CALIBRATION_LIVE_BUCKETS = Gauge(
    "emodrift_calibration_live_buckets", "age buckets whose thresholds are learned from traffic (not the manifest's)",
    multiprocess_mode="livemax")
CALIBRATION_AT_BOUND = Gauge(
    "emodrift_calibration_buckets_at_bound", "age buckets whose scale in force sits at a bound, learned, imported or "
    "borrowed (a global event, or traffic unlike the calibration)", multiprocess_mode="livemax")
# NaN, not 0, until the population has seen a full window (GET /v1/model: null): 0 would read as "no
# alarms". The window's history is shared in Redis, so every worker reads the same value from its first
# sync; one series per worker (pid) all the same: a worker that could not sync since it started has NaN, and PromQL's max
# skips NaN while the client's multi-process max would keep whichever value it read first.
CALIBRATION_ALARM_RATE = Gauge(
    "emodrift_calibration_recent_alarm_rate_ratio", "alarms per judged post over the last window of traffic, over "
    "the target rate (~1 when calibrated; a jump: the population moved at once); NaN until the population has "
    "seen a full window, one series per worker when multi-process: aggregate with max", multiprocess_mode="liveall")
CALIBRATION_ALARM_RATE.set(float("nan"))
ALERTS = Counter("emodrift_alerts_total", "drift events written to the outbox", ["type"])
# People's judgments of alerts: confirmed, false_alarm, not_actionable (the production precision)
ALERT_VERDICTS = Counter("emodrift_alert_verdicts_total", "alerts resolved, by verdict", ["verdict"])
# The same per detector rule that raised the alert (drift.started only; one raised by two rules counts for
# each): which rule's alarms people find false on this platform
ALERT_VERDICTS_BY_RULE = Counter("emodrift_alert_verdicts_by_rule_total",
                                 "drift.started alerts resolved, by a rule that raised them and verdict", ["rule", "verdict"])
# A verdict changed (amend): from the old to the new; the verdicts above keep counting first verdicts, and
# the dashboard nets these out of them
ALERT_VERDICT_AMENDMENTS = Counter("emodrift_alert_verdict_amendments_total",
                                   "resolved alerts whose verdict was changed, from the old verdict to the new",
                                   ["from_verdict", "to_verdict"])
ALERT_VERDICT_AMENDMENTS_BY_RULE = Counter(
    "emodrift_alert_verdict_amendments_by_rule_total",
    "drift.started alerts whose verdict was changed, by a rule that raised them", ["rule", "from_verdict", "to_verdict"])
MODEL_INFO = Gauge(
    "emodrift_model_info", "loaded models; role: emotion, temporal (served) or shadow, whatever the models' names",
    ["role", "name", "version", "provider"], multiprocess_mode="livemax"
)


# Webhooks. Attempts and final outcomes are counted apart: a delivery has one outcome, many attempts.
WEBHOOK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WEBHOOK_ATTEMPTS = Counter(
    "emodrift_webhook_attempts_total", "webhook POSTs by result", ["result"]  # delivered, retry, failed, gone
)
WEBHOOK_DELIVERIES = Counter(
    "emodrift_webhook_deliveries_total", "deliveries that reached a final outcome", ["outcome"]
)  # delivered, dead_lettered, disabled, cancelled
WEBHOOK_LATENCY = Histogram(
    "emodrift_webhook_delivery_duration_seconds", "one webhook attempt, request to response", buckets=WEBHOOK_BUCKETS
)
WEBHOOK_DEAD_LETTERS = Counter("emodrift_webhook_dead_letters_total", "deliveries moved to the dead-letter stream")
# Read from Redis by every replica, so every replica reports the same value: max, not sum.
OUTBOX_BACKLOG = Gauge(
    "emodrift_outbox_backlog", "outbox events not yet acknowledged by the dispatchers (unread ones: Redis >= 7)",
    multiprocess_mode="livemax",
)
OUTBOX_OLDEST_AGE = Gauge(
    "emodrift_outbox_oldest_pending_age_seconds", "age of the oldest unacknowledged outbox event",
    multiprocess_mode="livemax",
)
WEBHOOK_RETRIES_DUE = Gauge(
    "emodrift_webhook_deliveries_scheduled", "deliveries waiting for their next attempt", multiprocess_mode="livemax"
)


def from_zero(counter: Counter, *values: Iterable[str]) -> Counter:
    """Export every combination of a counter's closed set of label values at 0 from the start. A series
    that first appears at 1 has no sample before its first increment, so rate() and increase() never
    count that one: a rule on "any in the last hour" stays silent after a single event (a live Prometheus
    showed it, tests/test_prometheus_live.py). Called where the values are defined."""
    for combination in itertools.product(*values):
        counter.labels(*combination)
    return counter


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed worker its supervisor has not reaped yet is a zombie: dead for us
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def forget_dead_workers(directory: str) -> list[int]:
    """Remove the live-mode gauge files of processes that are gone; returns their pids."""
    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = path[:-3].rsplit("_", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            dead.add(int(pid))
    for gone in dead:
        multiprocess.mark_process_dead(gone, directory)
    return sorted(dead)


def samples(prefix: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample whose name starts with ``prefix``, as /metrics shows them:
    every worker's when running multi-process. For summaries served as JSON (the shadow's, /v1/model)."""
    if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry = DEFAULT_REGISTRY
    return [(s.name, s.labels, s.value) for family in registry.collect() for s in family.samples
            if s.name.startswith(prefix)]


def render() -> tuple[bytes, str]:
    """The exposition for /metrics: every worker's samples when running multi-process."""
    if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        forget_dead_workers(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
