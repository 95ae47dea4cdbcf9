"""An alert's lifecycle, pure: ``open`` → ``acknowledged`` → ``resolved`` with a verdict.

An alert is a drift event (``service.transition.drift_event``) plus the fields that follow it through its life. Each
transition returns a new dict and never touches the input; the store writes it with a compare-and-set.

>>> a = opened({"id": "evt_1", "type": "drift.started"}, created_at=0.0, backfill=False)
>>> a["status"], a["created_at"], a["verdict"]
('open', '1970-01-01T00:00:00.000000Z', None)
>>> b = acknowledged(a, now=60.0)
>>> b["status"], b["acknowledged_at"], acknowledged(b, now=120.0) == b
('acknowledged', '1970-01-01T00:01:00.000000Z', True)
>>> c = resolved(b, "false_alarm", "a costume party", now=90.0)
>>> c["status"], c["verdict"], c["note"], c["resolved_at"]
('resolved', 'false_alarm', 'a costume party', '1970-01-01T00:01:30.000000Z')
>>> resolved(c, "false_alarm", "a costume party", now=100.0) == c   # the same judgment again: a retry
True
>>> resolved(c, "confirmed", None, now=100.0)
Traceback (most recent call last):
...
service.errors.AlertResolved: alert evt_1 is already resolved (false_alarm)
>>> d = resolved(c, "confirmed", "it was not a party", now=200.0, by="key:0000abcd",
...              replaces=c["resolved_at"])  # a misclick mended: the judgment it replaces is named
>>> d["verdict"], d["resolved_by"], [(a["verdict"], a["note"]) for a in d["amended"]]
('confirmed', 'key:0000abcd', [('false_alarm', 'a costume party')])
>>> resolved(d, "not_actionable", None, now=300.0, replaces=c["resolved_at"])  # a stale page, or a retry
Traceback (most recent call last):
...
service.errors.AlertResolved: alert evt_1 was judged again since: now confirmed (key:0000abcd, 1970-01-01T00:03:20.000000Z)
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from service.errors import AlertResolved, Unprocessable
from service.timestamps import iso_time

Status = Literal["open", "acknowledged", "resolved"]
Verdict = Literal["confirmed", "false_alarm", "not_actionable"]
EventType = Literal["drift.started", "drift.ended"]
# which way an alert's mood moved, by its valence change: a wellbeing team's queue is the changes for the worse
# (a reviewer's audit: of 321 alerts, 92 were; the rest, "fear -> happy" among them, were in the way)
Direction = Literal["worse", "better"]
STATUSES: tuple[str, ...] = get_args(Status)
VERDICTS: tuple[str, ...] = get_args(Verdict)
# the verdicts that say the person's pattern did change: live calibration learns "normal" without them
REAL_CHANGE = ("confirmed", "not_actionable")
NOTE_MAX_CHARS = 2000
# judgments an alert keeps after it was amended (the audit trail of who judged a person, and how):
# bounded, as a note is, so a record stays small
MAX_AMENDMENTS = 10


def heads(alert: dict[str, Any], direction: Direction) -> bool:
    """Does the alert's change go that way? (a valence change of 0 goes neither)"""
    change = float(alert["valence_change"])
    return change < 0 if direction == "worse" else change > 0


def judged_real(alert: dict[str, Any]) -> bool:
    """Did a reviewer's verdict say the alert's change was real? (False while unjudged)"""
    return alert["verdict"] in REAL_CHANGE


def judgment_number(alert: dict[str, Any]) -> int:
    """Which judgment of the alert its verdict is: 1 for the first, one more for each change (those kept
    in ``amended`` and those dropped from it). It orders verdicts where clocks may not (replicas').

    >>> judgment_number({"verdict": "confirmed", "amended": [{}, {}], "amended_dropped": 3})
    6
    """
    return len(alert.get("amended") or []) + int(alert.get("amended_dropped") or 0) + 1


def plain_breaks(note: str) -> str:
    r"""A note's line breaks as LF, as it is stored and counted. A browser sends a textarea's breaks as
    CRLF (the form encoding says so) while its ``maxlength`` counts each as one character: counted as
    sent, a note that filled the page's field would be refused, and the API would store what the page
    could not.

    >>> plain_breaks("seen\r\nby me\rtoday\n")
    'seen\nby me\ntoday\n'
    """
    return note.replace("\r\n", "\n").replace("\r", "\n")


def opened(event: dict[str, Any], *, created_at: float, backfill: bool) -> dict[str, Any]:
    """The alert a drift event becomes when its step is written at ``created_at`` (unix seconds)."""
    return {**event, "status": "open", "created_at": iso_time(created_at), "backfill": backfill,
            "acknowledged_at": None, "acknowledged_by": None, "resolved_at": None, "resolved_by": None,
            "verdict": None, "note": None, "amended": None, "amended_dropped": None}


def acknowledged(alert: dict[str, Any], *, now: float, by: str | None = None) -> dict[str, Any]:
    """Someone is looking at it. Acknowledging twice changes nothing; a resolved alert stays resolved.
    ``by``: the label of the key that acted (access.key_label; None without keys)."""
    if alert["status"] == "resolved":
        raise AlertResolved(f"alert {alert['id']} is already resolved ({alert['verdict']})")
    if alert["status"] == "acknowledged":
        return alert
    return {**alert, "status": "acknowledged", "acknowledged_at": iso_time(now), "acknowledged_by": by}


def _bounded(history: list[dict[str, Any]], by: str | None) -> list[dict[str, Any]]:
    """At most MAX_AMENDMENTS judgments: the first stays (who judged first); then the oldest one without a
    note goes, else the oldest of the key changing it now, else the oldest. Ten changes of verdict pushed
    another reviewer's escalation note out, and ten with a note of "." did again (audits): one key's changes
    push out its own judgments, never another's notes while its own remain.

    >>> judged = [{"note": "first"}, {"note": "escalate", "resolved_by": "b"}] + [{"note": ".", "resolved_by": "a"}] * 9
    >>> [j["note"] for j in _bounded(judged, "a")][:3], len(_bounded(judged, "a"))
    (['first', 'escalate', '.'], 10)
    """
    if len(history) <= MAX_AMENDMENTS:
        return history
    later = history[1:]
    gone = next((i for i, judgment in enumerate(later) if not judgment.get("note")),
                next((i for i, judgment in enumerate(later) if by is not None and judgment.get("resolved_by") == by), 0))
    return [history[0], *later[:gone], *later[gone + 1:]]


def resolved(alert: dict[str, Any], verdict: str, note: str | None, *, now: float,
             by: str | None = None, replaces: str | None = None) -> dict[str, Any]:
    """Judged: ``verdict`` says whether the alert was right. Resolving again with the same verdict and
    note is a retry and changes nothing; another judgment of a resolved alert is a conflict, unless it
    ``replaces`` the one recorded (its ``resolved_at``: the one the person saw; a misclicked verdict
    could not be mended: an outside review). The judgment replaced is kept in ``amended``, oldest
    first; past MAX_AMENDMENTS the first judgment stays and others go, those without a note first, then the
    acting key's own (counted in ``amended_dropped``). A change made since
    the page was shown is a conflict, never overwritten unseen (a re-audit: two reviewers' stale
    pages, or one's retry, reverted each other's amends)."""
    if verdict not in VERDICTS:
        raise Unprocessable.at(("verdict",), f"must be one of {', '.join(VERDICTS)}")
    note = None if note is None else plain_breaks(note)
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise Unprocessable.at(("note",), f"at most {NOTE_MAX_CHARS} characters")
    if alert["status"] == "resolved":
        if alert["verdict"] == verdict and alert["note"] == note:
            return alert
        if replaces is None:
            raise AlertResolved(_judged_otherwise(alert, verdict),
                                to_change=f"send the verdict with \"replaces\": \"{alert['resolved_at']}\" (its resolved_at)")
        if replaces != alert["resolved_at"]:
            earlier = {j.get("resolved_at") for j in alert.get("amended") or []}
            said = "was judged again since" if replaces in earlier else "has no judgment of that resolved_at"
            raise AlertResolved(f"alert {alert['id']} {said}: now {alert['verdict']} "
                                f"({alert.get('resolved_by') or 'no key'}, {alert['resolved_at']})",
                                resolved_at=alert["resolved_at"])
        was = {name: alert.get(name) for name in ("verdict", "note", "resolved_at", "resolved_by")}
        history, dropped = _bounded([*(alert.get("amended") or []), was], by), int(alert.get("amended_dropped") or 0)
        dropped += len(alert.get("amended") or []) + 1 - len(history)
        return {**alert, "resolved_at": iso_time(now), "resolved_by": by, "verdict": verdict, "note": note,
                "amended": history, "amended_dropped": dropped or None}
    return {**alert, "status": "resolved", "resolved_at": iso_time(now), "resolved_by": by, "verdict": verdict,
            "note": note}


def _judged_otherwise(alert: dict[str, Any], verdict: str) -> str:
    """What differs from the judgment recorded: the verdict, or (the same verdict) the note."""
    if alert["verdict"] != verdict:
        return f"alert {alert['id']} is already resolved ({alert['verdict']})"
    recorded = "no note" if alert["note"] is None else f"the note {alert['note'][:200]!r}"
    return f"alert {alert['id']} is already resolved ({verdict}) with {recorded}; this request has another note"

