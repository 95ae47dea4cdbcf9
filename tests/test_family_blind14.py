"""Contract and intended properties of the blind14 stream family (photo / short-video app users)."""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from tests.generation_cost import assert_cheap

_PATH = Path(__file__).resolve().parents[1] / "model" / "families" / "blind14.py"


def _load():
    spec = importlib.util.spec_from_file_location("blind14_under_test", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = (
        module  # dataclasses look the module up while the class is built
    )
    spec.loader.exec_module(module)
    return module


B = _load()

SEED = 20240514
CHANGE_KINDS = (
    "abrupt_pos_neg",
    "abrupt_neg_pos",
    "gradual",
    "small_shift",
    "transient",
    "episode",
    "two_changes",
)
NEG = (0, 1, 2, 4)


@lru_cache(maxsize=None)
def streams(kind: str, n: int = 60):
    return tuple(B.make_streams(SEED, kind, n))


def observed_users():
    """Users without a mood change, for the observation-side checks."""
    return streams("none", 80) + streams("placebo", 100)


def neg_share(true: np.ndarray) -> float:
    return float(np.isin(true, NEG).mean())


def before(s) -> float:
    return neg_share(s.true_emotion[max(0, s.start - 150) : s.start])


# ---------------------------------------------------------------------------------------- contract


def test_names():
    assert B.NAME == "blind14"
    assert B.KINDS == (
        "none",
        "abrupt_pos_neg",
        "abrupt_neg_pos",
        "gradual",
        "small_shift",
        "transient",
        "episode",
        "two_changes",
        "placebo",
    )


@pytest.mark.parametrize("kind", B.KINDS)
def test_shapes_dtypes_and_rows(kind):
    for s in streams(kind)[:30]:
        T = len(s.probs)
        assert s.kind == kind
        assert s.probs.dtype == np.float32 and s.probs.shape == (T, 7)
        assert np.all(s.probs >= 0) and np.all(np.isfinite(s.probs))
        np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps.dtype == np.float64 and s.gaps.shape == (T,)
        assert s.gaps[0] == 0 and np.all(s.gaps[1:] > 0) and np.all(np.isfinite(s.gaps))
        assert s.face.dtype == np.bool_ and s.face.shape == (T,)
        assert np.issubdtype(
            s.true_emotion.dtype, np.integer
        ) and s.true_emotion.shape == (T,)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        for key in ("ramp", "direction", "direction2", "neg_before", "neg_after"):
            assert key in s.meta


@pytest.mark.parametrize("kind", B.KINDS)
def test_lengths_positions_and_meta(kind):
    for s in streams(kind):
        T, m = len(s.probs), s.meta
        if kind == "none":
            assert 1500 <= T <= 2500
            assert s.start is None and s.end is None and s.start2 is None
            assert (
                m["neg_after"] is None and m["ramp"] is None and m["direction2"] is None
            )
            continue
        assert 300 <= T <= 700
        assert 30 <= s.start <= 250 and T - s.start >= 150
        assert (s.end is not None) == (kind in ("transient", "episode"))
        assert (s.start2 is not None) == (kind == "two_changes")
        assert (m["ramp"] is not None) == (kind == "gradual")
        assert (m["direction2"] is not None) == (kind == "two_changes")
        if kind == "placebo":
            assert m["neg_after"] is None
        else:
            assert m["direction"] in (1, -1)
            assert 0 <= m["neg_before"] <= 1 and 0 <= m["neg_after"] <= 1
        if kind == "gradual":
            assert 20 <= m["ramp"] <= 200 and s.start + m["ramp"] + 150 <= T
        if kind == "episode":
            assert 20 <= s.end - s.start <= 110 and T - s.end >= 100
        if kind == "transient":
            assert 1 <= s.end - s.start <= 3
        if kind == "two_changes":
            assert s.start2 - s.start >= 100 and T - s.start2 >= 150
            assert m["direction2"] in (1, -1)


def test_unknown_kind_raises():
    with pytest.raises(ValueError):
        B.make_streams(1, "sudden", 2)
    with pytest.raises(ValueError):
        B.make_stream(np.random.default_rng(0), "sudden")


def test_determinism_and_variety():
    a = B.make_streams(7, "episode", 4)
    b = B.make_streams(7, "episode", 4)
    for x, y in zip(a, b):
        assert np.array_equal(x.probs, y.probs) and np.array_equal(x.gaps, y.gaps)
        assert np.array_equal(x.true_emotion, y.true_emotion) and np.array_equal(
            x.face, y.face
        )
        assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
    assert len({len(s.probs) for s in a}) > 1
    assert not np.array_equal(a[0].gaps[:50], a[1].gaps[:50])
    # the same seed under another kind is another set of users
    none, placebo = B.make_streams(7, "none", 3), B.make_streams(7, "placebo", 3)
    assert not np.array_equal(none[0].probs[:50], placebo[0].probs[:50])
    assert not np.array_equal(
        B.make_streams(8, "episode", 1)[0].probs[:50], a[0].probs[:50]
    )


def test_generation_is_cheap():
    assert_cheap(B.make_streams)


def test_start_spread():
    pooled = []
    for kind in B.KINDS[1:]:
        starts = np.array([s.start for s in streams(kind)])
        assert (starts < 80).sum() >= 3 and (starts > 170).sum() >= 3, kind
        assert starts.std() > 40
        pooled.append(starts)
    pooled = np.concatenate(pooled)
    assert (pooled < 80).mean() >= 0.12 and (pooled > 170).mean() >= 0.12


# ------------------------------------------------------------------------------- mood changes


def test_abrupt_pos_neg():
    ss = streams("abrupt_pos_neg")
    pre = np.array([before(s) for s in ss])
    post = np.array([neg_share(s.true_emotion[s.start : s.start + 150]) for s in ss])
    assert pre.mean() < 0.3
    assert (post - pre).mean() >= 0.25
    assert (post > pre).mean() >= 0.9


def test_abrupt_neg_pos():
    ss = streams("abrupt_neg_pos")
    pre = np.array([before(s) for s in ss])
    post = np.array([neg_share(s.true_emotion[s.start : s.start + 150]) for s in ss])
    assert pre.mean() > 0.4
    assert (pre - post).mean() >= 0.25
    assert (post < pre).mean() >= 0.9


def test_gradual():
    ss = streams("gradual")
    dirs = np.array([s.meta["direction"] for s in ss])
    assert (dirs > 0).sum() >= 10 and (dirs < 0).sum() >= 10
    ramps = np.array([s.meta["ramp"] for s in ss])
    assert ramps.min() < 50 and ramps.max() > 120
    moves = np.array(
        [
            neg_share(
                s.true_emotion[
                    s.start + s.meta["ramp"] : s.start + s.meta["ramp"] + 150
                ]
            )
            - before(s)
            for s in ss
        ]
    )
    assert (dirs * moves).mean() >= 0.25
    assert (dirs * moves > 0).mean() >= 0.9
    # halfway through the ramp the share is in between
    mid = np.array(
        [
            neg_share(
                s.true_emotion[
                    s.start + s.meta["ramp"] // 2 - 10 : s.start
                    + s.meta["ramp"] // 2
                    + 10
                ]
            )
            - before(s)
            for s in ss
        ]
    )
    assert 0.05 < (dirs * mid).mean() < (dirs * moves).mean()


def test_small_shift():
    ss = streams("small_shift")
    dirs = np.array([s.meta["direction"] for s in ss])
    assert (dirs > 0).sum() >= 10 and (dirs < 0).sum() >= 10
    designed = np.array([abs(s.meta["neg_after"] - s.meta["neg_before"]) for s in ss])
    assert designed.min() >= 0.1 and designed.max() <= 0.3
    moves = np.array(
        [neg_share(s.true_emotion[s.start : s.start + 150]) - before(s) for s in ss]
    )
    assert 0.1 <= (dirs * moves).mean() <= 0.3
    assert (dirs * moves > 0).mean() >= 0.75


def test_transient_is_a_real_short_dip_then_exactly_back():
    ss = streams("transient")
    pre = np.array([before(s) for s in ss])
    inside = np.concatenate([s.true_emotion[s.start : s.end] for s in ss])
    assert neg_share(inside) - pre.mean() >= 0.35
    after = np.array([neg_share(s.true_emotion[s.end : s.end + 150]) for s in ss])
    assert abs((after - pre).mean()) < 0.05
    assert all(s.meta["neg_end"] == s.meta["neg_before"] for s in ss)


def test_episode_dips_and_recovers():
    ss = streams("episode")
    pre = np.array([before(s) for s in ss])
    inside = np.array([neg_share(s.true_emotion[s.start : s.end]) for s in ss])
    after = np.array([neg_share(s.true_emotion[s.end : s.end + 150]) for s in ss])
    assert (inside - pre).mean() >= 0.25
    assert (inside > pre).mean() >= 0.9
    assert abs((after - pre).mean()) < 0.05


def test_two_changes():
    ss = streams("two_changes")
    d1 = np.array([s.meta["direction"] for s in ss])
    d2 = np.array([s.meta["direction2"] for s in ss])
    mid = np.array([neg_share(s.true_emotion[s.start : s.start2]) for s in ss])
    pre = np.array([before(s) for s in ss])
    post = np.array([neg_share(s.true_emotion[s.start2 : s.start2 + 150]) for s in ss])
    assert (d1 * (mid - pre)).mean() >= 0.2
    assert (d2 * (post - mid)).mean() >= 0.2
    assert {s.meta["pattern"] for s in ss} == {"back", "further", "overshoot"}
    back = np.array([s.meta["pattern"] == "back" for s in ss])
    assert abs((post - pre)[back].mean()) < 0.08  # back toward the old baseline


@pytest.mark.parametrize("kind", ["none", "placebo"])
def test_no_systematic_move(kind):
    diffs = []
    for s in streams(kind, 100):
        tr = s.true_emotion
        cuts = (
            [s.start]
            if kind == "placebo"
            else [len(tr) // 4, len(tr) // 2, 3 * len(tr) // 4]
        )
        diffs.append(
            np.mean(
                [
                    neg_share(tr[c : c + 150]) - neg_share(tr[max(0, c - 150) : c])
                    for c in cuts
                ]
            )
        )
    diffs = np.array(diffs)
    assert abs(diffs.mean()) < 0.03
    assert (np.abs(diffs) < 0.2).mean() >= 0.85
    assert diffs.std() > 0.02  # natural swings exist


def test_placebo_usually_has_a_harmless_event_near_start():
    ss = streams("placebo", 100)
    near = [
        s.meta["harmless"] is not None and abs(s.meta["harmless_at"] - s.start) <= 3
        for s in ss
    ]
    assert 0.6 <= np.mean(near) <= 0.95


# ------------------------------------------------------------------------------- observations


def test_classifier_accuracy_realistic_and_personal():
    acc, pairs = [], set()
    for s in observed_users():
        f = s.face
        read = s.probs.argmax(axis=1)
        acc.append(float((read[f] == s.true_emotion[f]).mean()))
        shown = s.meta["shown_emotion"][f]
        wrong = read[f] != shown
        codes = np.bincount(shown[wrong] * 7 + read[f][wrong], minlength=49)
        pairs.add(int(codes.argmax()))
    acc = np.array(acc)
    assert 0.45 <= np.median(acc) <= 0.68
    assert np.percentile(acc, 90) - np.percentile(acc, 10) >= 0.12
    assert len(pairs) >= 4  # users do not share one confusion pattern


def test_faceless_share():
    faceless = np.array([1.0 - s.face.mean() for s in observed_users()])
    assert 0.3 <= faceless.mean() <= 0.7
    assert faceless.std() >= 0.07
    assert np.percentile(faceless, 10) < 0.42 and np.percentile(faceless, 90) > 0.58


def test_faceless_rows_less_peaked():
    users = observed_users()
    face_peak = np.array([s.probs[s.face].max(axis=1).mean() for s in users])
    blank_peak = np.array([s.probs[~s.face].max(axis=1).mean() for s in users])
    assert face_peak.mean() > blank_peak.mean() + 0.1
    assert (face_peak > blank_peak).mean() >= 0.85
    assert face_peak.std() > 0.05  # confidence shape is personal


def test_dark_photos_are_read_worse():
    hit = {True: [], False: []}
    peak = {True: [], False: []}
    for s in observed_users():
        f = s.face
        for dark in (True, False):
            sel = f & (s.meta["dark"] == dark)
            hit[dark].append(
                s.probs[sel].argmax(axis=1) == s.meta["shown_emotion"][sel]
            )
            peak[dark].append(s.probs[sel].max(axis=1))
    assert np.concatenate(hit[True]).mean() < np.concatenate(hit[False]).mean() - 0.05
    assert np.concatenate(peak[True]).mean() < np.concatenate(peak[False]).mean() - 0.03


def test_gaps_heavy_tailed_with_bursts_and_pauses():
    users = streams("none", 80)[:30]
    g = np.concatenate([s.gaps[1:] for s in users])
    assert (g < 600).mean() >= 0.3  # bursts inside sessions
    assert (g > 86400).mean() >= 0.03  # day-long pauses
    assert (g > 14 * 86400).sum() >= 1  # at least one long silence
    assert np.percentile(g, 99) / np.median(g) > 100
    per_day = np.array([len(s.gaps) / (s.gaps.sum() / 86400) for s in users])
    assert per_day.max() / per_day.min() > 10  # frequent and rare posters


def test_shared_accounts():
    users = observed_users()
    shared = np.array([s.meta["shared"] for s in users])
    assert 0.12 <= shared.mean() <= 0.4
    other, off_true, misread = [], [], []
    for s in users:
        f = s.face
        other.append(s.meta["other_face"][f].mean())
        off_true.append((s.meta["shown_emotion"][f] != s.true_emotion[f]).mean())
        misread.append((s.probs[f].argmax(axis=1) != s.true_emotion[f]).mean())
    other, off_true, misread = map(np.array, (other, off_true, misread))
    assert other[shared].mean() >= 0.25 and other[~shared].mean() < 0.15
    assert off_true[shared].mean() >= off_true[~shared].mean() + 0.1
    assert misread[shared].mean() >= misread[~shared].mean() + 0.05
