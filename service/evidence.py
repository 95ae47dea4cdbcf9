"""Why an alert fired, in terms a person can check: the posts that moved the drift score most and a
one-line reason ("mostly happy over 40 posts → mostly sad over the last 9"), and which of them showed a
face: a post without one is read from the whole picture, which says much less about a person's mood, so
a reviewer should know when the evidence rests on such posts.

The pipeline reads the last ``evidence_posts`` posts from the user's timeline when (and only when) an
alert fires: for each, the post id, how much it moved the drift score, and the CNN's top emotion
(one character each: the index in ``LABELS``) and whether a face was found in it. Keeping them out of
the state record keeps it small.

>>> e = explain("drift.started", before=[0, 0, 0, .7, .1, .1, .1], after=[.1, 0, .1, .1, .6, 0, .1],
...             post_ids=["a", "b", "c", "d", "e"], deltas=[0.0, -0.01, 0.2, 0.15, 0.3], labels="33444",
...             posts_seen=45, faces=[True, True, False, True, True])
>>> e["reason"], e["posts_with_face"]
('mostly happy over 42 posts → mostly sad over the last 3', 4)
>>> [(p["post_id"], p["score_change"], p["emotion"], p["face"]) for p in e["top_posts"]]
[('e', 0.3, 'sad', True), ('c', 0.2, 'sad', False), ('d', 0.15, 'sad', True)]
>>> explain("drift.started", [0, 0, 0, .7, .1, .1, .1], [.1, 0, .1, .1, .6, 0, .1], ["a", "b", "c"],
...         [0.1, 0.2, 0.3], "444", 45, faces=[False, False, True])["reason"]
'mostly happy before → mostly sad over at least the last 3; a face in only 1 of these 3 posts'

Every post read shows the new pattern: it may have begun before them, so no count is claimed for either
side. The same emotion leading on both sides (the share rule's alerts), the negative share says what moved;
and only an episode that ended ``recovered`` is a return, "again" (a new baseline, or a promoted model that
does not see the episode, is not, whatever the emotions read):

>>> explain("drift.started", [0, 0, .1, .8, .05, 0, .05], [.1, 0, .1, .5, .2, 0, .1], ["a", "b", "c", "d"],
...         [0, 0.1, 0.1, 0.2], "3433", 45, faces=[True] * 4, shares=(0.15, 0.4))["reason"]
'mostly happy before → mostly happy over at least the last 4, negative emotions 15% → 40%'
>>> explain("drift.ended", [0, 0, .1, .8, .05, 0, .05], [.1, 0, .1, .1, .6, 0, .1], ["a", "b", "c", "d"],
...         [0, -0.1, -0.1, -0.2], "3444", 90, faces=[True] * 4)["reason"]
'mostly happy over 87 posts → mostly sad over the last 3'
>>> explain("drift.ended", [.1, 0, .1, .1, .6, 0, .1], [0, 0, .1, .8, .05, 0, .05], ["a", "b", "c", "d"],
...         [0, -0.1, -0.1, -0.2], "4333", 90, faces=[True] * 4, returned=True)["reason"]
'mostly sad over 87 posts → mostly happy again over the last 3'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.emotions import LABELS

TOP_POSTS = 3


def describe(distribution: Sequence[float]) -> str:
    """'mostly sad' when one emotion has >= 40% of the distribution, else 'mixed, sad leading'.

    >>> describe([.1, 0, 0, .5, .2, .1, .1]), describe([.3, 0, .1, .25, .2, .05, .1])
    ('mostly happy', 'mixed, angry leading')
    """
    top = max(range(len(LABELS)), key=lambda i: distribution[i])
    return f"mostly {LABELS[top]}" if distribution[top] >= 0.4 else f"mixed, {LABELS[top]} leading"


def run_length(labels: str, target: int) -> int:
    """How many of the latest posts belong to the new regime: the longest tail in which at least half
    of the posts show ``target`` (and the oldest of them does).

    >>> run_length("3334344", 4), run_length("3333", 4), run_length("4", 4)
    (4, 0, 1)
    """
    best, hits = 0, 0
    for n, ch in enumerate(reversed(labels), start=1):
        hits += ch == str(target)
        if ch == str(target) and 2 * hits >= n:
            best = n
    return best


def explain(event_type: str, before: Sequence[float], after: Sequence[float], post_ids: Sequence[str],
            deltas: Sequence[float], labels: str, posts_seen: int, faces: Sequence[bool],
            shares: tuple[float, float] | None = None, returned: bool = False,
            sources: Sequence[str | None] | None = None) -> dict[str, Any]:
    """The ``evidence`` block of an alert (see the module docstring); ``faces``: per evidence post,
    whether a face was found (for an observation: what the platform said). The reason says so when fewer
    than half of the posts showed one.
    ``shares``: the negative share before and after (the temporal model's, ``TemporalModel.negative_share``);
    ``returned``: a drift.ended whose episode ended ``recovered``; ``sources``: per evidence post, how it
    was scored ("image", "observation": the face is the platform's word; None: not recorded)."""
    after_top = max(range(len(LABELS)), key=lambda i: after[i])
    n = len(post_ids)
    tail = min(n, max(1, run_length(labels[-n:], after_top))) if n else 0
    earlier = max(0, posts_seen - tail)
    # drift.started: the posts that pushed the score up; drift.ended: the ones that brought it down
    sign = 1.0 if event_type == "drift.started" else -1.0
    face = list(faces[-n:]) if n else []
    source = list(sources[-n:]) if n and sources is not None else [None] * len(face)
    rows = list(zip(post_ids, deltas[-n:] if n else [], labels[-n:] if n else "", face, source))
    moved = sorted((r for r in rows if sign * r[1] > 0), key=lambda r: -sign * r[1])[:TOP_POSTS]
    was, now = describe(before), describe(after)
    again = "again " if event_type == "drift.ended" and returned else ""
    # the whole window in the new regime: it may have begun before it, so neither count is known exactly
    if tail == n and n < posts_seen:
        reason = f"{was} before → {now} {again}over at least the last {tail}"
    else:
        reason = f"{was} over {earlier} posts → {now} {again}over the last {tail}"
    if now == was and shares is not None:  # the same emotion leads (the share rule's alerts): what moved
        reason += f", negative emotions {shares[0]:.0%} → {shares[1]:.0%}"
    with_face = sum(map(bool, face))
    few = f"; a face in only {with_face} of these {n} posts" if 2 * with_face < n else ""
    return {
        "reason": f"{reason}{few}",
        "top_posts": [{"post_id": pid, "score_change": round(float(d), 4), "emotion": LABELS[int(ch)],
                       "face": bool(f), **({"source": src} if src else {})} for pid, d, ch, f, src in moved],
        "posts_with_face": with_face,
    }
