"""The picture of one user an analyst opens from an alert: ``GET /v1/users/{id}/timeline.svg``.

Three aligned panels over the user's recent posts (x = post, oldest left):
the emotion mix as a stacked band, the valence of each post (−1..+1), and the drift score (0..1)
with the fast rule's bar at each post (``transition.alarm_bars``: the threshold raised by the score
profile at the user's age and by live calibration; the other two rules can alarm below it); vertical
markers where alerts started (red) and ended (green: back to the pattern before; orange: the changed
pattern lasted and is the new baseline; grey: a newly served model ended it).
Plain SVG text, no plotting library: the service stays small, the output is deterministic.
"""

from __future__ import annotations

from html import escape
from typing import Any

from service.emotions import LABELS, VALENCE
from service.timestamps import for_people

COLOURS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#f2c80f",
           "sad": "#1f77b4", "surprise": "#ff7f0e", "neutral": "#b0b0b0"}
POSTS = 200  # posts a picture draws unless asked for another number (the API's default; /ui's picture)
WIDTH, LEFT, RIGHT = 900, 70, 110
PLOT_W = WIDTH - LEFT - RIGHT  # the posts' columns span this
BAND, VAL, SCORE, GAP, TOP = 120, 110, 110, 34, 52  # above TOP: the title, then the subtitle
HEIGHT = TOP + BAND + GAP + VAL + GAP + SCORE + 40
# The longest id the title shows whole: that many of the widest glyphs (W, @ at 15px bold) and ": last 200
# posts" still fit from LEFT to WIDTH. Ids may have 128 characters; longer ones lose their middle.
TITLE_ID_CHARS = 44
# an alert marker's colour: where an episode started, ended back, or ended in a new baseline (drawn green,
# as a recovery, it read as good news while the user stayed changed: a reviewer's audit)
_MARKER_COLOURS = {"drift.started": "#d62728", "recovered": "#2ca02c", "new_baseline": "#ff7f0e",
                   "model_changed": "#7f7f7f"}  # grey: the model changed, not the user (green said "back": a re-audit)
LABEL_PX = 7.5  # the widest a character of an alert marker's label (12 px, bold) takes: where it would overflow


def render(user_id: str, posts: list[dict[str, Any]], bars: list[float], highlight: str | None = None) -> str:
    """``highlight``: an alert id whose marker is drawn thicker and labelled "this alert" (the alert's
    page: several markers may be in the picture)."""
    n = len(posts)
    grid = _Grid(PLOT_W / max(n, 1))
    y_valence = TOP + BAND + GAP
    y_score = y_valence + VAL + GAP
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<title>emodrift timeline of {escape(user_id)}</title>',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{LEFT}" y="18" font-size="15" font-weight="bold">{escape(_shown(user_id))}: last {n} posts</text>',
           f'<text x="{LEFT}" y="38" fill="#555">emotion mix (top), valence, drift score</text>',
           *_emotion_mix(posts, grid),
           *_valence_panel(posts, grid, y_valence),
           *_score_panel(posts, grid, y_score, bars),
           *_alert_markers(posts, grid, y_score + SCORE, highlight)]
    if n:
        first, last = (escape(for_people(posts[i].get("created_at"))) for i in (0, -1))
        out.append(f'<text x="{LEFT}" y="{HEIGHT - 8}">{first}</text>'
                   f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{last}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _shown(user_id: str) -> str:
    """The id as the title shows it: whole up to TITLE_ID_CHARS, else its start and its end (where ids
    tend to differ) around an ellipsis. The picture's <title> and the alert's page carry it whole.

    >>> _shown("ann"), _shown("user-" + "0123456789" * 12 + "end")
    ('ann', 'user-0123456789012345…1234567890123456789end')
    """
    if len(user_id) <= TITLE_ID_CHARS:
        return user_id
    head = (TITLE_ID_CHARS - 1) // 2
    return f"{user_id[:head]}…{user_id[head - TITLE_ID_CHARS + 1:]}"


class _Grid:
    """Post ``i``'s column: ``step`` wide, centred at ``x(i)``."""

    def __init__(self, step: float) -> None:
        self.step = step

    def x(self, i: float) -> float:
        return LEFT + (i + 0.5) * self.step


def _emotion_mix(posts: list[dict[str, Any]], grid: _Grid) -> list[str]:
    """Panel 1: the emotion mix, one stacked column per post, and the legend."""
    step, y0 = grid.step, TOP
    out = ['<g id="emotion-mix">']
    for i, post in enumerate(posts):
        probs = post.get("emotion", {}).get("probabilities", {})
        top = float(y0)
        for label in LABELS:
            h = BAND * float(probs.get(label, 0.0))
            if h > 0.05:
                out.append(f'<rect x="{grid.x(i) - step / 2:.2f}" y="{top:.2f}" width="{step:.2f}" height="{h:.2f}" '
                           f'fill="{COLOURS[label]}"/>')
            top += h
    out.append("</g>")
    for k, label in enumerate(LABELS):  # legend
        ly = y0 + 4 + k * 16
        out.append(f'<rect x="{WIDTH - RIGHT + 12}" y="{ly}" width="10" height="10" fill="{COLOURS[label]}"/>'
                   f'<text x="{WIDTH - RIGHT + 26}" y="{ly + 9}">{label}</text>')
    return out


def _valence_panel(posts: list[dict[str, Any]], grid: _Grid, y1: float) -> list[str]:
    """Panel 2: the valence of each post."""
    valences = [_valence(post) for post in posts]
    return [_axis(y1, VAL, "valence", "+1", "−1", mid="0"),
            _polyline("valence", [(grid.x(i), y1 + VAL * (1 - v) / 2) for i, v in enumerate(valences)], "#444")]


def _score_panel(posts: list[dict[str, Any]], grid: _Grid, y2: float, bars: list[float]) -> list[str]:
    """Panel 3: the drift score, and the fast rule's bar at each post (dashed, red)."""
    scores = [float(post.get("drift", {}).get("score", 0.0)) for post in posts]
    bar = [(grid.x(i), y2 + SCORE * (1 - b)) for i, b in enumerate(bars)]
    last = bar[-1][1] if bar else y2
    return [_axis(y2, SCORE, "drift score", "1", "0"),
            _polyline("bar", bar, "#d62728", dashed=True),
            f'<text x="{LEFT + PLOT_W + 4}" y="{last + 4:.2f}" fill="#d62728">fast-rule bar</text>',
            _polyline("score", [(grid.x(i), y2 + SCORE * (1 - s)) for i, s in enumerate(scores)], "#1f77b4")]


def _alert_markers(posts: list[dict[str, Any]], grid: _Grid, bottom: float, highlight: str | None) -> list[str]:
    """Where alerts started (red) and ended (green: back; orange: a new baseline), across all panels."""
    out = ['<g id="alerts">']
    for i, post in enumerate(posts):
        alert = post.get("alert")
        if alert:
            colour = _MARKER_COLOURS.get(alert.get("resolution") or alert["type"], "#2ca02c")
            x, this = grid.x(i), alert.get("id") == highlight
            label, extra = (f"this alert ({alert['type']})", " this") if this else (alert["type"], "")
            weight = ' font-weight="bold"' if this else ""
            # near the right edge the label ends at its line instead of starting there (a fresh alert is the
            # latest post: "this alert (drift.starte" was cut off)
            at = (f'x="{x - 3:.2f}" text-anchor="end"' if x + LABEL_PX * len(label) > WIDTH
                  else f'x="{x + 3:.2f}"')
            out.append(f'<line class="alert {escape(alert["type"])}{extra}" x1="{x:.2f}" x2="{x:.2f}" y1="{TOP}" '
                       f'y2="{bottom}" stroke="{colour}" stroke-width="{4 if this else 2}"/>'
                       f'<text {at} y="{bottom + 16}" fill="{colour}"{weight}>{escape(label)}</text>')
    out.append("</g>")
    return out


def _valence(post: dict[str, Any]) -> float:
    probs = post.get("emotion", {}).get("probabilities", {})
    return max(-1.0, min(1.0, sum(VALENCE[label] * float(probs.get(label, 0.0)) for label in LABELS)))


def _axis(y: float, height: float, name: str, top: str, bottom: str, mid: str | None = None) -> str:
    parts = [f'<text x="{LEFT}" y="{y - 6}" font-weight="bold">{name}</text>',
             f'<rect x="{LEFT}" y="{y}" width="{PLOT_W}" height="{height}" fill="none" stroke="#ccc"/>',
             f'<text x="{LEFT - 6}" y="{y + 10}" text-anchor="end">{top}</text>',
             f'<text x="{LEFT - 6}" y="{y + height}" text-anchor="end">{bottom}</text>']
    if mid is not None:
        my = y + height / 2
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{my}" y2="{my}" stroke="#eee"/>'
                     f'<text x="{LEFT - 6}" y="{my + 4}" text-anchor="end">{mid}</text>')
    return "".join(parts)


def _polyline(name: str, points: list[tuple[float, float]], colour: str, dashed: bool = False) -> str:
    coords = " ".join(f"{px:.2f},{py:.2f}" for px, py in points)
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return f'<polyline id="{name}" points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>'
