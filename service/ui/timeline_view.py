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


# a run of one dominant emotion shorter than this is told with the run before it (or after it, at a segment's
# start): the words follow the picture's blocks of colour, not each post
MIN_RUN = 5


def _mood(posts: list[dict[str, Any]]) -> str:
    mean = [sum(float(p["emotion"]["probabilities"].get(label, 0.0)) for p in posts) / len(posts) for label in LABELS]
    return describe(mean)


def _dominant(post: dict[str, Any]) -> str:
    probabilities = post["emotion"]["probabilities"]
    return max(LABELS, key=lambda label: float(probabilities.get(label, 0.0)))


def _runs(posts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``posts`` cut where the dominant emotion changes for at least MIN_RUN posts."""
    runs: list[list[dict[str, Any]]] = []
    for post in posts:
        if runs and _dominant(runs[-1][-1]) == _dominant(post):
            runs[-1].append(post)
        else:
            runs.append([post])
    merged: list[list[dict[str, Any]]] = []
    carried: list[dict[str, Any]] = []
    for run in runs:
        if len(run) < MIN_RUN and merged:
            merged[-1].extend(run)
        elif len(run) < MIN_RUN:
            carried.extend(run)  # a short run at the start goes with the next
        else:
            merged.append(carried + run)
            carried = []
    if carried:
        merged.append(carried)
    return merged


def _segment(posts: list[dict[str, Any]], first: int) -> list[tuple[int, int, str]]:
    """A stretch between alert markers, a run of one mood at a time: (first post, last post, mood)."""
    said: list[tuple[int, int, str]] = []
    at = first
    for run in _runs(posts):
        mood = _mood(run)
        if said and said[-1][2] == mood:
            said[-1] = (said[-1][0], at + len(run) - 1, mood)
        else:
            said.append((at, at + len(run) - 1, mood))
        at += len(run)
    return said


def _stretch(first: int, last: int, mood: str) -> str:
    return f"post {first} {mood}" if first == last else f"posts {first} to {last} {mood}"


def _marker(post: dict[str, Any], number: int, own_id: str) -> str:
    alert = post.get("alert") or {}
    what = (f"drift.ended ({str(alert.get('resolution') or 'recovered').replace('_', ' ')})"
            if alert.get("type") == "drift.ended" else "drift.started")
    own = "this alert, " if alert.get("id") == own_id else ""
    return f"at post {number} ({when(post['created_at'])}) {own}{what}"


def _words(posts: list[dict[str, Any]], own_id: str) -> str:
    """The picture in words: its runs of one mood, and every alert marker where it stands. One mood over
    whole stretches said "mostly happy" of a user whose posts went angry, happy and angry again, and no
    marker was named (a reviewer's audit and its re-audit)."""
    said: list[str] = []
    start = 0
    for i, post in enumerate(posts):
        if post.get("alert") and i > start:
            said += [_stretch(*run) for run in _segment(posts[start:i], start + 1)]
            start = i
        if post.get("alert"):
            said.append(_marker(post, i + 1, own_id))
    last = _segment(posts[start:], start + 1)
    if not said and len(last) == 1 and len(posts) > 1:  # one mood throughout, no marker: said once
        return last[0][2]
    return "; ".join(said + [_stretch(*run) for run in last])


def view(alert: dict[str, Any], posts: list[dict[str, Any]]) -> TimelineView:
    """``posts``: what the picture draws, oldest first."""
    if not posts:
        return TimelineView(0, None, f"No posts of {alert['user_id']} are kept.")
    position = next((i for i, p in enumerate(posts) if (p.get("alert") or {}).get("id") == alert["id"]), None)
    span = f"{len(posts)} posts of {alert['user_id']}, {when(posts[0]['created_at'])} to {when(posts[-1]['created_at'])}"
    now = f"the drift score is {float(posts[-1]['drift']['score']):.2f} at the last one"
    if position is None:
        return TimelineView(len(posts), None, f"{span}, all received after this alert's post: "
                                              f"{_words(posts, alert['id'])}; {now}.")
    return TimelineView(len(posts), position + 1, (
        f"{span}. This alert's post is number {position + 1} ({when(alert['at'])}), drift score "
        f"{float(posts[position]['drift']['score']):.2f}. {_words(posts, alert['id'])}; {now}."))
