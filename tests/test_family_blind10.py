"""Contract tests of the held-out family ``model.families.blind10`` (simulated image timelines)."""

from __future__ import annotations


import numpy as np
import pytest

from model.families import blind10 as fam
from tests.generation_cost import assert_cheap

CHANGE = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode",
          "two_changes", "placebo")


@pytest.fixture(scope="module")
def streams() -> dict[str, list[fam.Stream]]:
    return {kind: fam.make_streams(11, kind, 4 if kind == "none" else 16) for kind in fam.KINDS}


def _neg(p: np.ndarray) -> np.ndarray:
    return fam.neg_share(np.asarray(p, float))


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


def _true_neg(s: fam.Stream, a: int, b: int | None) -> float:
    return float(fam.NEGATIVE[s.true_emotion[a:b]].mean())


def test_interface_constants():
    assert fam.NAME == "blind10"
    assert fam.LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert fam.KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
                         "episode", "two_changes", "placebo")
    assert [fam.LABELS[i] for i in np.flatnonzero(fam.NEGATIVE)] == ["angry", "disgust", "fear", "sad"]
    with pytest.raises(ValueError):
        fam.make_streams(0, "sudden", 1)


@pytest.mark.parametrize("kind", fam.KINDS)
def test_shapes_dtypes_and_rows(streams, kind):
    for s in streams[kind]:
        T = s.length
        assert s.kind == kind
        assert s.probs.shape == (T, 7) and s.probs.dtype == np.float32
        assert np.all(s.probs >= 0) and np.allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps.shape == (T,) and s.gaps.dtype == np.float64
        assert s.gaps[0] == 0.0 and np.all(s.gaps[1:] >= 0) and np.all(np.isfinite(s.gaps))
        assert s.face.shape == (T,) and s.face.dtype == bool
        assert s.true_emotion.shape == (T,) and np.issubdtype(s.true_emotion.dtype, np.integer)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() < 7
        assert s.feel.shape == (T, 7) and np.allclose(s.feel.sum(axis=1), 1.0, atol=1e-4)
        assert s.displayed.shape == (T,) and np.all(s.displayed[~s.face] == -1)


@pytest.mark.parametrize("kind", ("none", "gradual", "two_changes"))
def test_deterministic_per_seed(kind):
    a, b = fam.make_streams(5, kind, 2), fam.make_streams(5, kind, 3)
    for x, y in zip(a, b):   # same seed: same users (and the first n do not depend on how many)
        assert np.array_equal(x.probs, y.probs) and np.array_equal(x.gaps, y.gaps)
        assert np.array_equal(x.face, y.face) and np.array_equal(x.true_emotion, y.true_emotion)
        assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
    c = fam.make_streams(6, kind, 2)
    assert not np.array_equal(a[0].gaps[:50], c[0].gaps[:50])


def test_kinds_with_one_seed_are_different_users(streams):
    firsts = [streams[k][0] for k in fam.KINDS]
    for i in range(len(firsts)):
        for j in range(i + 1, len(firsts)):
            assert not np.allclose(firsts[i].probs[:30], firsts[j].probs[:30])
            assert not np.allclose(firsts[i].gaps[1:30], firsts[j].gaps[1:30])


@pytest.mark.parametrize("kind", fam.KINDS)
def test_lengths_and_change_positions(streams, kind):
    for s in streams[kind]:
        T = s.length
        if kind == "none":
            assert 1500 <= T <= 3000 and s.start is None and s.end is None and s.start2 is None
            continue
        assert 300 <= T <= 900 and 20 <= s.start <= 300
        last = s.start
        if kind in ("transient", "episode"):
            lo, hi = (1, 3) if kind == "transient" else (10, 80)
            assert lo <= s.end - s.start <= hi
            last = s.end
        else:
            assert s.end is None
        if kind == "two_changes":
            assert s.start2 - s.start >= 100
            last = s.start2
        else:
            assert s.start2 is None
        if kind == "gradual":
            assert 20 <= s.settled - s.start <= 300
            last = s.settled
        assert T - last >= 150


def test_abrupt_changes_last_and_point_the_right_way(streams):
    for kind, sign in (("abrupt_pos_neg", 1), ("abrupt_neg_pos", -1)):
        shifts = []
        for s in streams[kind]:
            p0, p1 = s.pattern[0], s.pattern[-1]
            assert np.allclose(s.pattern[:s.start], p0) and np.allclose(s.pattern[s.start:], p1)
            assert sign * (_neg(p1) - _neg(p0)) >= 0.15 - 1e-6
            shifts.append(_true_neg(s, s.start, None) - _true_neg(s, 0, s.start))
        assert sign * np.mean(shifts) > 0.12
        assert sum(sign * x > 0 for x in shifts) >= 0.8 * len(shifts)


def test_gradual_ramps_from_start_and_includes_lateral_changes():
    ss = fam.make_streams(12, "gradual", 40)
    lateral = 0
    for s in ss:
        p0, p1 = s.pattern[0], s.pattern[-1]
        assert np.allclose(s.pattern[:s.start], p0) and np.allclose(s.pattern[s.settled:], p1)
        assert _tv(p0, p1) >= 0.1
        dist = [_tv(p0, s.pattern[i]) for i in range(s.start, s.settled)]
        assert 0 < dist[0] < _tv(p0, p1) and np.all(np.diff(dist) >= -1e-5)   # moves steadily away
        lateral += abs(_neg(p1) - _neg(p0)) < 0.05
    assert lateral >= 4   # changes between emotions that keep the negative share


def _counterfactual_neg(s: fam.Stream, p: np.ndarray) -> float:
    """Mean negative share of the stream's feelings had its pattern been p (same moods, hours, days)."""
    tilt = np.log(s.feel.astype(float)) - np.log(s.pattern.astype(float))
    x = np.log(np.asarray(p, float)) + tilt
    x = np.exp(x - x.max(axis=1, keepdims=True))
    return float(_neg(x / x.sum(axis=1, keepdims=True)).mean())


def test_small_shift_moves_negative_share_by_a_tenth_to_three_tenths(streams):
    signs = []
    for s in streams["small_shift"]:
        p0, p1 = s.pattern[0], s.pattern[-1]
        assert np.allclose(s.pattern[:s.start], p0) and np.allclose(s.pattern[s.start:], p1)
        shift = _counterfactual_neg(s, p1) - _counterfactual_neg(s, p0)
        assert 0.095 <= abs(shift) <= 0.305
        realized = _true_neg(s, s.start, None) - _true_neg(s, 0, s.start)
        signs.append(np.sign(shift) == np.sign(realized))
    assert np.mean(signs) >= 0.7


@pytest.mark.parametrize("kind", ("transient", "episode"))
def test_transients_and_episodes_return(streams, kind):
    inside, outside = [], []
    for s in streams[kind]:
        p0 = s.pattern[0]
        assert np.allclose(s.pattern[:s.start], p0) and np.allclose(s.pattern[s.end:], p0)
        assert _tv(s.pattern[s.start], p0) >= 0.25
        assert np.allclose(s.pattern[s.start:s.end], s.pattern[s.start])
        mood = s.pattern[s.start]
        inside.append(np.log(mood[s.true_emotion[s.start:s.end]] / p0[s.true_emotion[s.start:s.end]]).mean())
        outside.append(np.log(mood[s.true_emotion[s.end:]] / p0[s.true_emotion[s.end:]]).mean())
    assert np.mean(inside) > 0.2 > np.mean(outside)   # felt like the other mood inside, like before after


def test_two_changes_are_two_lasting_changes(streams):
    for s in streams["two_changes"]:
        p0, p1, p2 = s.pattern[0], s.pattern[s.start], s.pattern[-1]
        assert np.allclose(s.pattern[:s.start], p0)
        assert np.allclose(s.pattern[s.start:s.start2], p1) and np.allclose(s.pattern[s.start2:], p2)
        assert _tv(p0, p1) >= 0.1 and _tv(p1, p2) >= 0.1


@pytest.mark.parametrize("kind", ("none", "placebo"))
def test_stable_users_do_not_change(streams, kind):
    shifts = []
    for s in streams[kind]:
        assert np.allclose(s.pattern, s.pattern[0])
        cut = s.length // 2 if kind == "none" else s.start
        shifts.append(_true_neg(s, cut, None) - _true_neg(s, 0, cut))
        if kind == "none":   # long halves: the felt emotions have the same distribution
            before = np.bincount(s.true_emotion[:cut], minlength=7) / cut
            after = np.bincount(s.true_emotion[cut:], minlength=7) / (s.length - cut)
            assert _tv(before, after) < 0.2   # felt emotions come in runs (sessions, photo dumps)
            assert _tv(s.feel[:cut].mean(0), s.feel[cut:].mean(0)) < 0.1
    assert abs(np.mean(shifts)) < 0.1   # short windows before a placebo start vary, but not one way
    assert any(s.nuisances for s in streams[kind])   # nuisances happen to stable users too


def test_faceless_posts_exist_and_vary(streams):
    all_streams = [s for ss in streams.values() for s in ss]
    shares = np.array([s.face.mean() for s in all_streams])
    assert np.all(shares < 0.97) and np.all(shares > 0.03)
    assert 0.2 < shares.mean() < 0.8
    uniform = [np.allclose(s.probs[~s.face], 1 / 7, atol=1e-3) for s in all_streams]
    assert 0 < sum(uniform) < len(all_streams)   # some pipelines return a uniform vector, others not


def test_classifier_accuracy_on_faces_roughly_in_range(streams):
    acc = []
    for ss in streams.values():
        for s in ss:
            read = s.face & (s.displayed >= 0)
            acc.append((s.probs[read].argmax(axis=1) == s.displayed[read]).mean())
    acc = np.array(acc)
    assert 0.5 <= np.median(acc) <= 0.75
    assert np.all(acc > 0.25) and np.all(acc < 0.95)
    conf = np.concatenate([s.probs[s.face].max(axis=1) for ss in streams.values() for s in ss])
    assert np.quantile(conf, 0.1) < 0.35 and np.quantile(conf, 0.9) > 0.85   # flat to overconfident


def test_gaps_are_bursty_and_heavy_tailed(streams):
    for s in streams["none"]:
        g = s.gaps[1:]
        assert g.std() > g.mean()   # burstier than a Poisson process
        assert np.quantile(g, 0.99) > 10 * np.median(g) and g.max() > 30 * np.median(g)
    g = np.concatenate([s.gaps[1:] for s in streams["none"]])
    assert np.mean(g < 600) > 0.3 and np.mean(g > 86400) > 0.005


def test_fast_enough():
    assert len(fam.make_streams(3, "abrupt_pos_neg", 40)) == 40
    assert_cheap(fam.make_streams)  # against a yardstick timed in the same run
