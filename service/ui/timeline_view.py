"""What the alert page says about the picture beside it: whether the alert's own post is among the
posts it draws, and a text alternative that carries the picture's content.

The picture draws the user's last posts (at most the ``timeline_length`` kept), which need not
include the alert's: 300 posts after an alert the picture showed only happy posts beside an alert
about a change to sad, and nothing said so (an outside review: evidence for "false alarm" that is
not evidence). The page now says when the alert's post has left the picture, and the picture marks
the alert's post as "this alert" when it is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.emotions import LABELS
from service.evidence import describe
from service.timestamps import for_people as when


@dataclass(frozen=True)
class TimelineView:
    shown: int  # posts in the picture
    position: int | None  # the alert's post among them, from 1; None: not among them
    alt: str  # the picture's content in words (the page's text alternative)


def _mood(posts: list[dict[str, Any]]) -> str:
    mean = [sum(float(p["emotion"]["probabilities"].get(label, 0.0)) for p in posts) / len(posts) for label in LABELS]
    return describe(mean)


def _stretches(posts: list[dict[str, Any]], first: int, own_id: str, lead: str = "") -> str:
    """``posts`` (the picture's from number ``first``) in words, a stretch between later alerts at a time:
    one mood over all of them said "mostly happy" of a user who changed, recovered and changed again
    (a reviewer's audit: the picture's own markers were never named). ``lead``: words before a single stretch."""
    said, start = [], 0
    for i, post in enumerate(posts):
        alert = post.get("alert") or {}
        if i == 0 or not alert or alert.get("id") == own_id:
            continue
        said.append(f"posts {first + start} to {first + i - 1} {_mood(posts[start:i])}")
        what = (f"drift.ended ({str(alert.get('resolution') or 'recovered').replace('_', ' ')})"
                if alert.get("type") == "drift.ended" else "a new drift.started")
        said.append(f"at post {first + i} ({when(post['created_at'])}) {what}")
        start = i
    last = f"posts {first + start} to {first + len(posts) - 1} " if said else lead
    return "; ".join([*said, f"{last}{_mood(posts[start:])}"])


def view(alert: dict[str, Any], posts: list[dict[str, Any]]) -> TimelineView:
    """``posts``: what the picture draws, oldest first."""
    if not posts:
        return TimelineView(0, None, f"No posts of {alert['user_id']} are kept.")
    position = next((i for i, p in enumerate(posts) if (p.get("alert") or {}).get("id") == alert["id"]), None)
    span = f"{len(posts)} posts of {alert['user_id']}, {when(posts[0]['created_at'])} to {when(posts[-1]['created_at'])}"
    now = f"the drift score is {float(posts[-1]['drift']['score']):.2f} at the last one"
    if position is None:
        return TimelineView(len(posts), None, f"{span}, all received after this alert's post: "
                                              f"{_stretches(posts, 1, alert['id'])}; {now}.")
    before, since = posts[:position], posts[position:]
    said_before = f"the {len(before)} before it {_mood(before)}; " if before else ""
    return TimelineView(len(posts), position + 1, (
        f"{span}. This alert's post is number {position + 1} ({when(alert['at'])}), drift score "
        f"{float(since[0]['drift']['score']):.2f}: {said_before}{_stretches(since, position + 1, alert['id'], 'from it on ')}; {now}."))
