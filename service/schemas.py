"""Request and response models of the HTTP API (the contract clients rely on)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema, field_validator,
)
from pydantic_core import PydanticCustomError

from service.alerts.lifecycle import NOTE_MAX_CHARS, EventType, Status, Verdict, plain_breaks
from service.base64_images import decode_base64
from service import errors
from service.drift import Event, RaisedBy
from service.emotions import LABELS
from service.webhooks import signing

ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
ID_RULE = "1-128 characters of A-Z a-z 0-9 . _ : @ -"


# A user id is a path segment (/v1/users/{user_id}): "." and ".." are resolved away by clients (curl and
# httpx send /v1/users/.. as /v1/), so such a user could not be read or erased with them. Refused where a
# user is written; reads and DELETE still take them, so what was stored before stays erasable.
DOTS_RULE = "not only dots ('.', '..': clients resolve them out of the URL, so the user could not be read or erased)"


def _check_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise ValueError(f"must be {ID_RULE}")
    return value


def check_new_user_id(value: str) -> str:
    """A user id a post may write: the id rule, and ``DOTS_RULE``."""
    if not value.strip("."):
        raise ValueError(f"must be {DOTS_RULE}")
    return value


_ID_SCHEMA = WithJsonSchema({"type": "string", "pattern": ID_PATTERN.pattern, "maxLength": 128})
Id = Annotated[str, AfterValidator(_check_id), _ID_SCHEMA]
NewUserId = Annotated[str, AfterValidator(_check_id), AfterValidator(check_new_user_id), _ID_SCHEMA]
Probabilities = dict[str, float]


def _check_probabilities(value: dict[str, float]) -> dict[str, float]:
    missing = [label for label in LABELS if label not in value]
    extra = [key for key in value if key not in LABELS]
    if missing or extra:
        raise ValueError(f"need exactly the labels {list(LABELS)} (missing {missing}, unknown {extra})")
    if any(not (p >= 0.0) or p == float("inf") for p in value.values()):
        raise ValueError("probabilities must be finite and >= 0")
    total = sum(value.values())
    if not 0.98 <= total <= 1.02:
        raise ValueError(f"probabilities must sum to 1 (got {total:.4f})")
    return {label: value[label] / total for label in LABELS}


PROBABILITIES_SCHEMA = {
    "type": "object", "description": "one probability per label, summing to 1 (within 0.02)",
    "properties": {label: {"type": "number", "minimum": 0, "maximum": 1} for label in LABELS},
    "required": list(LABELS), "additionalProperties": False,
}
# A number, as the schema says: pydantic's lax float took "0.85" too. Strict still takes an integer.
Probability = Annotated[float, Strict()]
ProbabilityInput = Annotated[dict[str, Probability], AfterValidator(_check_probabilities),
                             WithJsonSchema(PROBABILITIES_SCHEMA)]

EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, tzinfo=timezone.utc)
# A post's created_at may be ahead of this server's clock by clock skew, not more: one at 9999-12-30 held
# the user's last_post_at there for good (later posts never moved it, their gaps read as 0; an audit)
MAX_AHEAD = timedelta(days=1)


def _check_time(value: datetime) -> datetime:
    """An instant; without an offset it is UTC (never the server's zone). Bounded so that every
    offset and the float timestamp stay representable (year 9999 at -12:00 is year 10000 in UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError("must be between 1970-01-01 and 9999-12-30 (UTC)")
    if (ahead := utc - datetime.now(timezone.utc)) > MAX_AHEAD:
        raise ValueError(f"is {ahead.total_seconds() / 3600:.0f} hours ahead of this server's clock (at most "
                         f"{MAX_AHEAD.total_seconds() / 3600:.0f} are taken): check the sending clock")
    return utc


RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")


def _rfc3339_text(value: object) -> object:
    """Only RFC 3339 text: pydantic also takes numbers and digit strings as Unix times, guessing
    seconds or milliseconds by size (253402214399 became 1978), which a client never means."""
    if not isinstance(value, str) or not (match := RFC3339.fullmatch(value)):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-11-25T10:00:00Z")
    if value[17:19] == "60":  # a leap second (RFC 3339 allows it; Python's datetime does not): its minute's last µs
        return f"{value[:17]}59.999999{value[match.end(1) if match.group(1) else 19:]}"
    return value


# An RFC 3339 time the service answers with (it writes them: timestamps.py), typed as one in the schema so that
# generated clients parse it (they had plain strings: an integration audit)
DateTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339_text), AfterValidator(_check_time),
                      WithJsonSchema({"type": "string", "format": "date-time"})]


class PostFields(BaseModel):
    """The form fields that come with a multipart image upload."""

    model_config = ConfigDict(extra="forbid")
    post_id: Id
    created_at: Timestamp | None = Field(None, description="RFC 3339 (no offset: UTC); default: when it was received")


def _decoded_image(value: object) -> object:
    """``image_base64`` decoded, once, as the field is validated: the route needs the bytes, and an image
    can be megabytes. A refusal is the field's (``body.image_base64``), as a batch item's is."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    try:
        return decode_base64(value)
    except ValueError as exc:
        raise PydanticCustomError("base64", str(exc)) from exc


# The bytes, to the model; a string of base64, to clients (the OpenAPI schema)
Base64Image = Annotated[bytes, BeforeValidator(_decoded_image), WithJsonSchema({"type": "string"})]


class ImagePostJSON(PostFields):
    model_config = ConfigDict(extra="forbid")
    image_base64: Base64Image = Field(..., description="the image bytes, base64 (docs/api.md: what is taken)")

    def image_bytes(self) -> bytes:
        return self.image_base64


class ObservationJSON(BaseModel):
    model_config = ConfigDict(extra="forbid")
    post_id: Id
    created_at: Timestamp | None = None
    probabilities: ProbabilityInput
    face_detected: bool = Field(True, description="False if your model scored something other than a face")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: NewUserId
    post_id: Id
    created_at: Timestamp | None = None
    image_base64: str | None = None
    probabilities: ProbabilityInput | None = None
    face_detected: bool = Field(True, description="a probabilities item only: false if your model scored something "
                                "other than a face (the alert's evidence counts posts with a face)")


class BatchRequest(BaseModel):
    items: list[BatchItem] = Field(..., min_length=1)
    backfill: bool = Field(False, description="history, not news: states advance and alerts are recorded "
                           "(backfill: true in /v1/alerts), but no webhook is sent")


class Emotion(BaseModel):
    label: str
    probabilities: Probabilities
    face_detected: bool
    source: Literal["image", "observation"] | None = Field(
        None, description="image: scored here (the face detector and the CNN); observation: the platform's own "
        "model's probabilities, face_detected as it said. Absent on posts recorded before it was kept")


class DriftSummary(BaseModel):
    score: float
    status: Literal["warming_up", "stable", "drifting"]
    posts_seen: int


class Regime(BaseModel):
    """The user's emotions on one side of a change."""

    distribution: Probabilities
    dominant: str = Field(..., description="the emotion with the highest probability")
    valence: float = Field(..., description="-1 (negative) .. +1 (positive); see the valence table in docs/drift.md")


class EvidencePost(BaseModel):
    post_id: str
    score_change: float = Field(..., description="how much this post moved the drift score")
    emotion: str
    face: bool | None = Field(None, description="whether a face was found in the post (without one the "
                              "emotion is read from the whole picture); for an observation, what the platform said "
                              "(source); null on alerts raised before it was recorded")
    source: Literal["image", "observation"] | None = Field(
        None, description="image: the face detector's finding; observation: the platform's own model scored it and "
        "face is its face_detected. Absent on alerts raised before it was recorded")


class Evidence(BaseModel):
    reason: str = Field(..., description="one line a person can check, e.g. "
                        "'mostly happy over 40 posts → mostly sad over the last 9'; it adds "
                        "'a face in only k of these n posts' when fewer than half of the evidence posts showed one")
    top_posts: list[EvidencePost]
    posts_with_face: int | None = Field(None, description="how many of the posts in `evidence_post_ids` showed a "
                                        "face (for observations: were said to); null on alerts raised before it "
                                        "was recorded")


class Judgment(BaseModel):
    """A verdict an amend replaced, as it was."""

    verdict: Verdict
    note: str | None = None
    resolved_at: DateTime | None = None
    resolved_by: str | None = None


class Alert(BaseModel):
    """A drift event and its life: what the webhook carries (``data``), what a post's answer carries
    (``alert``), and what /v1/alerts lists. ``id`` is the webhook's ``webhook-id``."""

    model_config = ConfigDict(extra="allow", title="Alert")  # later releases may add fields: keep them
    id: str = Field(..., description="evt_<32 hex>; the webhook-id of its deliveries")
    type: EventType
    user_id: str
    at: DateTime = Field(..., description="RFC 3339: the created_at of the post that raised it")
    emitted_at: DateTime = Field(..., description="RFC 3339: when the service raised it")
    score: float = Field(..., description="the drift score (0..1) at that post")
    posts_seen: int
    before: Regime
    after: Regime
    valence_change: float
    evidence_post_ids: list[str] = Field(..., description="the last posts up to this one, oldest first")
    evidence: Evidence
    model_versions: dict[str, str]
    timeline_url: str = Field(..., description="the user's timeline picture (EMODRIFT_PUBLIC_URL + path)")
    resolution: Literal["recovered", "new_baseline", "model_changed"] | None = Field(
        None, description="drift.ended only: back to the old baseline, or the new pattern persisted and is the "
        "user's baseline now (then a later change is reported like the first), or a newly served temporal model "
        "does not see the user drifting (model_changed: docs/shadow.md); null on drift.started")
    ended_by: Literal["recovery", "return_test", "rebaseline", "promotion"] | None = Field(
        None, description="drift.ended only: which rule ended the episode. recovery: the drift score low and the "
        "negative share back for recovery_posts posts; return_test: at the re-baseline post, the negative share's "
        "evidence of a return (recovered); rebaseline: still away at the re-baseline post (new_baseline); "
        "promotion: the first post under a newly served model, which does not see the episode (model_changed). "
        "Null on drift.started and on alerts raised before it existed")
    started_id: str | None = Field(
        None, description="drift.ended only: the id of the drift.started it ends (a receiver pairs them without a "
        "lookup); null on drift.started, when that start was no longer kept when the end was raised, or was recorded "
        "before this field was. A start dropped since (alerts_per_user: with 1, by the end itself) answers 404")
    raised_by: list[RaisedBy] | None = Field(
        None, description="drift.started only: the rules that fired on the post. fast: the drift score over its "
        "threshold for confirm_posts posts in a row; evidence: the CUSUM of the drift score; share: the CUSUMs of "
        "the user's negative share; promotion: the first post under a newly served model, which sees the user "
        "drifting where the old one did not (docs/shadow.md). Null on drift.ended and on alerts raised before it "
        "existed")
    ui_url: str | None = Field(None, description="the alert's page for people: EMODRIFT_PUBLIC_URL + "
                               "/ui/alerts/{id} (sign-in with a reviewer or admin key); absent on alerts raised before it existed")
    status: Status
    created_at: DateTime = Field(..., description="RFC 3339: when it was recorded (the listing's order)")
    backfill: bool = Field(..., description="raised by a backfill: recorded, never sent as a webhook")
    acknowledged_at: DateTime | None = None
    acknowledged_by: str | None = Field(None, description="the key that acknowledged it: key: and the first 8 hex "
                                        "digits of its SHA-256 (docs/alerts.md); null without keys")
    resolved_at: DateTime | None = None
    resolved_by: str | None = Field(None, description="the key that resolved it, likewise")
    verdict: Verdict | None = None
    note: str | None = None
    amended: list[Judgment] | None = Field(None, description="judgments replaced by an amend, oldest first (at most "
                                           "10); null until one is (absent on alerts recorded before it was kept)")
    amended_dropped: int | None = Field(None, description="judgments replaced and not kept past those 10 (the "
                                        "first stays; those without a note go first); null until one is")


class AlertList(BaseModel):
    alerts: list[Alert] = Field(..., description="newest first")
    next_cursor: str | None = Field(..., description="pass as `cursor` for the next page; null: no more")


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict = Field(
        ..., description="confirmed: the person's pattern did change; false_alarm: it did not; "
        "not_actionable: it changed, but nothing is to be done")
    note: str | None = Field(None, max_length=NOTE_MAX_CHARS)
    replaces: str | None = Field(None, description="to change the verdict (and note) of an alert already resolved: "
                                 "the resolved_at of the judgment it replaces, as read. The judgment replaced is kept in "
                                 "the alert's `amended`. Without it another verdict is a 409; with a resolved_at that "
                                 "is no longer the alert's (judged again since), a 409 too")

    @field_validator("note", mode="before")
    @classmethod
    def _plain_breaks(cls, value: Any) -> Any:
        # before max_length: the length is counted with LF breaks, as the page's field counts it
        return plain_breaks(value) if isinstance(value, str) else value


class WebhookPayload(BaseModel):
    """The body of every drift webhook (Standard Webhooks): signed with the webhook-id, -timestamp and
    -signature headers; ``data.id`` equals ``webhook-id``."""

    type: EventType
    timestamp: DateTime = Field(..., description="RFC 3339: when the event was emitted")
    data: Alert


class PostResult(BaseModel):
    user_id: str
    post_id: str
    created_at: DateTime
    duplicate: bool
    emotion: Emotion
    drift: DriftSummary
    alert: Alert | None = Field(..., description="the alert this post raised, if any")


class BatchItemResult(PostResult):
    index: int = Field(..., description="the item's place in the request's items")


class BatchItemError(BaseModel):
    """An item that was not applied, and why (the batch itself answers 200)."""

    index: int = Field(..., description="the item's place in the request's items")
    error: ErrorDetail


class BatchResponse(BaseModel):
    # typed, not free objects: a generated client had no model for a result, and an item's error was easy
    # to miss (an integration audit)
    results: list[BatchItemResult | BatchItemError] = Field(..., description="one per item, in the request's order")


class UserView(BaseModel):
    user_id: str
    drift: DriftSummary
    baseline: Probabilities
    recent: Probabilities
    last_alert: Alert | None = Field(..., description="the user's latest alert as it stands now")
    model_versions: dict[str, str]
    last_post_at: DateTime | None


class TimelineView(BaseModel):
    user_id: str
    posts: list[PostResult] = Field(..., description="each post's first answer, oldest first")


# --- webhook subscriptions and their delivery log (/v1/webhooks) ---------------------------------
class WebhookCreate(BaseModel):
    url: str = Field(description="http(s) receiver; private addresses only when the operator allows them")
    events: list[Event] = Field(min_length=1, description="event types to receive")
    secret: str | None = Field(None, description="whsec_ + base64 of 24-64 bytes; generated when absent")

    @field_validator("secret")
    @classmethod
    def _secret_is_whsec(cls, value: str | None) -> str | None:
        if value is not None:
            signing.secret_key(value)  # ValueError -> 422 with the reason
        return value


class WebhookView(BaseModel):
    id: str
    url: str
    events: list[str]
    status: Literal["enabled", "disabled"]
    created_at: DateTime
    disabled_reason: str | None = None
    previous_secret_expires_at: DateTime | None = Field(
        None, description="after a rotation: until then deliveries carry a signature with previous secrets too "
        "(each replaced secret signs until its own grace period ends; this is when the last one does)")


class WebhookCreated(WebhookView):
    secret: str = Field(description="shown in this response only: keep it to verify signatures")


class SecretRotation(BaseModel):
    secret: str | None = Field(None, description="the new secret (whsec_ + base64 of 24-64 bytes); generated when absent")
    grace_seconds: int | None = Field(
        None, ge=0, le=7 * 24 * 3600,
        description="how long deliveries are signed with the replaced secret too (and, at most as long, with secrets "
        "replaced before it whose grace has not ended; 0 stops them all now); default EMODRIFT_WEBHOOK_SECRET_GRACE_SECONDS")

    @field_validator("secret")
    @classmethod
    def _secret_is_whsec(cls, value: str | None) -> str | None:
        if value is not None:
            signing.secret_key(value)
        return value


class WebhookList(BaseModel):
    webhooks: list[WebhookView]


class Attempt(BaseModel):
    attempt: int
    at: DateTime
    status_code: int | None
    error: str | None
    latency_ms: float
    result: Literal["delivered", "retry", "failed", "gone"]
    response: str | None = None
    retry_after_s: float | None = None
    next_attempt_at: DateTime | None = None


# a delivery's status: pending until it reaches one final outcome (emodrift_webhook_deliveries_total{outcome})
DeliveryStatus = Literal["pending", "delivered", "dead_lettered", "disabled", "cancelled"]


class DeliveryView(BaseModel):
    """One delivery: one event for one subscription. Mind the two ids named "webhook": ``webhook_id`` here
    is Standard Webhooks' ``webhook-id`` header, the *event's* id (``evt_…``), while DeliveryLog's
    ``webhook_id`` and the path's ``{webhook_id}`` name the *subscription* (``wh_…``). ``event_id`` and
    ``subscription_id`` say the same without the ambiguity."""

    id: str = Field(description="dlv_…: this delivery (one event for one subscription)")
    webhook_id: str = Field(description="the event's id (evt_…), sent as the Standard Webhooks `webhook-id` "
                            "header: the same on every attempt and replay, to deduplicate on. Not the "
                            "subscription: that is `subscription_id`. Equal to `event_id`")
    event_id: str = Field(description="the event's id (evt_…): the alert's `id`; equal to `webhook_id`")
    subscription_id: str = Field(description="the subscription (wh_…) this delivery is for: the path's {webhook_id}")
    type: str
    status: DeliveryStatus
    reason: str | None
    created_at: DateTime
    next_attempt_at: DateTime | None
    finished_at: DateTime | None
    replays: int
    attempts: list[Attempt]


class DeliveryLog(BaseModel):
    webhook_id: str = Field(description="the subscription (wh_…), as in the path; not the `webhook-id` header, "
                            "which is each delivery's `webhook_id` (the event's id). Equal to `subscription_id`")
    subscription_id: str = Field(description="the subscription (wh_…): the same as `webhook_id` here")
    deliveries: list[DeliveryView] = Field(description="newest first")


ReplayableStatus = Literal["dead_lettered", "cancelled", "disabled"]


class BulkReplay(BaseModel):
    webhook_id: str = Field(description="the subscription (wh_…), as in the path")
    status: ReplayableStatus = Field(description="the status whose deliveries were replayed")
    replayed: list[str] = Field(description="the deliveries replayed (dlv_…), oldest first: each now pending, "
                                "its next attempt due at once, with the same webhook-id")
    skipped: int = Field(description="deliveries in that status a moment before that another request replayed "
                         "(or that finished) meanwhile: not replayed twice")


def error_codes(status_class: int) -> str:
    """The codes a client can get in a status class, from the error tree (service/errors.py), and which of
    them say when to retry: what a client's retry logic needs, generated so that it cannot drift."""
    found = sorted({(kind.status, kind.code, bool((kind.headers or {}).get("Retry-After")))
                    for kind in errors.kinds() if kind.status // 100 == status_class})
    named = ", ".join(f"`{code}` ({status})" for status, code, _ in found)
    retry = ", ".join(f"`{code}`" for _, code, retry_after in found if retry_after)
    return f"`error.code` is one of {named}. Retry after the `Retry-After` header's seconds: {retry}"


class ErrorDetail(BaseModel):
    # the codes here too: a generated client shows a field's description, not a response's (a re-audit)
    code: str = Field(..., description=f"stable, machine-readable. 4xx: {error_codes(4)}. 5xx: {error_codes(5)}")
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: ``{"error": {"code", "message"}}`` (service/errors.py renders it)."""

    error: ErrorDetail


# declared, so that a client generated from the schema can read it (a re-audit found it nowhere)
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before sending the same request again (on the codes "
                               "named above)", "schema": {"type": "integer", "minimum": 0}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": f"The request was refused. {error_codes(4)}; the others are the "
            "client's to fix", "headers": RETRY_AFTER},
    "5XX": {"model": ErrorBody, "description": f"The service cannot answer now. {error_codes(5)}; `internal` is a "
            "bug (its message says what failed), `embedded_redis_exited` needs a restart", "headers": RETRY_AFTER},
}
