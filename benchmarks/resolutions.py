"""``python -m benchmarks.resolutions [--quick]``: how the service ends the episodes it raises, on changes
that persist and on mood episodes that return. Writes ``docs/resolutions.md``.

Why: issue 12 asks that an episode end with ``drift.ended`` and ``resolution: "new_baseline"`` when the
user's new pattern persists, and ``"recovered"`` when they return. The published run (docs/detection.md)
measures only the first half: of the persistent changes found, the share back to ``stable`` through
``new_baseline`` within ``rebaseline_posts``. A receiver also acts on the second half: a user told to have
a new normal who in fact came back, or told recovered while still changed, is a wrong message about a
real person, and often a second alarm for the same episode. This page reads both.

- **Persistent changes** (abrupt both ways, gradual, small shifts, the first change of two-change
  streams): each found one (the bar's window) ends, first after its first alarm in the window, as
  ``new_baseline`` within ``rebaseline_posts`` (+1) of that alarm (right), as ``recovered`` (wrong), or
  with no end before the stream ends; *alarmed again*: another alarm in the window after that end.
- **Returning episodes** (the ``episode`` kind: a mood episode of some tens of posts, then the user's old
  pattern): each found one (an alarm from 1 post before it to 10 posts after it) ends as ``recovered``
  (right), as ``new_baseline`` (wrong: the episode's posts become the user's normal), or not before the
  stream ends; *alarmed again*: another alarm after that end (the return itself read as a change).
  The training families' episode streams end 40 posts after the episode, too soon to see most endings;
  the held-out ones run on for hundreds of posts.

The published run's streams (seed, size, families, from ``docs/detection_families.json``), with
``EPISODES`` episode streams per family (the first ``per_kind`` are the published run's) for a count that
can tell a rate; the service as shipped (the manifest's calibration). The harness's check: the persistent
figures against the published run's.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

from benchmarks import metrics
from benchmarks.families import PERSISTENT, change_case, served_config, service_events
from benchmarks.published import cli, per_family, served_temporal, write_page
from model import families
from model.families.base import Stream

EPISODES = 500  # episode streams per family: the benchmark's 100 find a dozen or two, too few for a rate


@dataclasses.dataclass(frozen=True)
class Plan:
    seed: int
    per_kind: int
    families: tuple[str, ...]
    episodes: int = EPISODES
    workers: int = 2


@dataclasses.dataclass(frozen=True)
class Ending:
    """How one found change's episode ended: the first ``drift.ended`` after its first alarm in the window
    (``resolution`` "": none before the stream ends), the posts from the alarm to it, and whether another
    alarm followed that end before ``until``."""

    resolution: str
    posts: int | None
    again: bool


def ending(s: Stream, alarms: list[int], ends: list[tuple[int, str]]) -> Ending | None:
    """How the change of ``s`` ended, read as the bar reads it (``change_case``: a two-change stream's
    first change runs up to its second): the first end after its first alarm in the bar's window, and any
    alarm after that end up to where the change's reading stops; None when it was not found."""
    case = change_case(s, alarms)
    hits = metrics.in_window(case)
    if not hits:
        return None
    later = [(t, r) for t, r in ends if t > hits[0]]
    if not later:
        return Ending("", None, False)
    t, resolution = later[0]
    return Ending(resolution, t - hits[0], any(t < a < case.length for a in case.alarms))


def _tally(endings: list[Ending | None], right: str, within: int | None = None) -> dict:
    found = [e for e in endings if e is not None]
    n = len(found)

    def share(test) -> float:
        return round(sum(1 for e in found if test(e)) / n, 4) if n else 0.0

    wrong = "recovered" if right == "new_baseline" else "new_baseline"
    timely = [e.posts for e in found if e.resolution == right and e.posts is not None]
    return {"streams": len(endings), "found": n,
            "right": share(lambda e: e.resolution == right and (within is None or (e.posts or 0) <= within)),
            "wrong": share(lambda e: e.resolution == wrong), "open": share(lambda e: not e.resolution),
            "again": share(lambda e: e.again), "posts_median": round(statistics.median(timely), 1) if timely else None}


def run_family(job: tuple[Plan, str]) -> dict:
    plan, family = job
    temporal = served_temporal()
    config = served_config(temporal)
    persistent = [s for kind in PERSISTENT for s in families.make_streams(family, plan.seed, kind, plan.per_kind)]
    episodes = families.make_streams(family, plan.seed, "episode", plan.episodes)
    out: dict = {"family": family, "rebaseline_posts": config.rebaseline_posts}
    for name, streams, right in (("persistent", persistent, "new_baseline"), ("episode", episodes, "recovered")):
        alarms, ends = service_events(temporal, streams, config)
        endings = [ending(s, a, e) for s, a, e in zip(streams, alarms, ends)]
        out[name] = _tally(endings, right, config.rebaseline_posts + 1 if right == "new_baseline" else None)
    return out


def run(plan: Plan) -> list[dict]:
    return per_family(run_family, [(plan, family) for family in plan.families], plan.workers)


def check(published: dict, result: dict, plan: Plan) -> str:
    """The persistent figures against the published run's (the same streams, the same service)."""
    if plan.seed != published["plan"]["seed"] or plan.per_kind != published["plan"]["per_kind"]:
        return "not the published streams"
    theirs = published["families"].get(result["family"], {}).get("detectors", {}).get("service", {}).get("new_baseline")
    if not theirs:
        return "not published"
    ours = result["persistent"]
    same = (ours["found"] == theirs["found"] and abs(ours["right"] - theirs["new_baseline_share"]) < 1e-3
            and abs(ours["wrong"] - theirs["recovered_share"]) < 1e-3)
    return "reproduced" if same else "DIFFERS"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def markdown(results: list[dict], published: dict, plan: Plan, seconds: float) -> str:
    held_out = set(published.get("held_out", []))
    rb = results[0]["rebaseline_posts"] if results else 0
    lines = ["# How the service ends its episodes",
             "",
             f"Generated by `python -m benchmarks.resolutions` ({seconds:.0f} s); why and how: the module's docstring, "
             "what it showed: [detection_rules.md](detection_rules.md#how-episodes-end-eleventh-round), and since the "
             "return test: [the twelfth round](detection_rules.md#the-return-test-twelfth-round). "
             f"The published run's streams (seed {plan.seed}, {plan.per_kind} per persistent kind) and {plan.episodes} "
             "episode streams per family; the service as shipped (the manifest's calibration). Shares are of the "
             "changes found.",
             "",
             "| family | persistent changes found | new_baseline within "
             f"{rb} posts (right) | recovered (wrong) | no end | alarmed again | returning episodes "
             "found | recovered (right) | its median posts after the alarm | new_baseline (wrong) | no end before the "
             "stream ends | alarmed again | harness check |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        p, e = r["persistent"], r["episode"]
        name = f"**{r['family']}** (held out)" if r["family"] in held_out else r["family"]
        lines.append(f"| {name} | {p['found']} of {p['streams']} | {_pct(p['right'])} | {_pct(p['wrong'])} | "
                     f"{_pct(p['open'])} | {_pct(p['again'])} | {e['found']} of {e['streams']} | {_pct(e['right'])} | "
                     f"{format(e['posts_median'], 'g') if e['posts_median'] is not None else '–'} | {_pct(e['wrong'])} | "
                     f"{_pct(e['open'])} | {_pct(e['again'])} | {check(published, r, plan)} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args, published = cli("python -m benchmarks.resolutions", __doc__ or "", argv)
    p = published["plan"]
    plan = Plan(seed=p["seed"], per_kind=p["per_kind"], families=tuple(args.family) or tuple(published["families"]),
                workers=args.workers)
    if args.quick:
        plan = dataclasses.replace(plan, per_kind=8, episodes=40, families=tuple(args.family) or ("sessions", "blind"))
    started = time.perf_counter()
    results = run(plan)
    write_page(args.out, "resolutions", args.quick, markdown(results, published, plan, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
