"""Tests of the ``blind16`` stream family (adults 30-75 on a general photo-sharing network)."""

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "model" / "families" / "blind16.py"
_spec = importlib.util.spec_from_file_location("blind16_under_test", _PATH)
fam = importlib.util.module_from_spec(_spec)
sys.modules["blind16_under_test"] = fam
_spec.loader.exec_module(fam)

NEG = np.array([0, 1, 2, 4])
CHANGE_KINDS = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode", "two_changes")


@lru_cache(maxsize=None)
def streams(kind, n=40, seed=7):
    return fam.make_streams(seed, kind, n)


def neg(s, lo=None, hi=None):
    return np.isin(s.true_emotion[lo:hi], NEG).mean()


def emp(a):
    return np.bincount(a, minlength=7) / len(a)


def tv(p, q):
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum()


def last_change(s):
    if s.kind == "gradual":
        return s.start + s.design["ramp"]
    if s.kind in ("transient", "episode"):
        return s.end
    if s.kind == "two_changes":
        return s.start2
    return s.start


# ------------------------------------------------------------------ contract


def test_constants():
    assert fam.NAME == "blind16"
    assert fam.KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
                         "episode", "two_changes", "placebo")


@pytest.mark.parametrize("kind", fam.KINDS)
def test_stream_contract(kind):
    ss = streams(kind, 20)
    assert len(ss) == 20
    for s in ss:
        T = len(s.probs)
        assert s.kind == kind
        assert s.probs.dtype == np.float32 and s.probs.shape == (T, 7)
        assert np.all(s.probs >= 0) and np.all(np.isfinite(s.probs))
        assert np.allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps.dtype == np.float64 and s.gaps.shape == (T,)
        assert s.gaps[0] == 0 and np.all(s.gaps >= 0) and np.all(np.isfinite(s.gaps))
        assert s.face.dtype == np.bool_ and s.face.shape == (T,)
        assert s.true_emotion.shape == (T,) and np.issubdtype(s.true_emotion.dtype, np.integer)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        if kind == "none":
            assert 1500 <= T <= 3000
        else:
            assert 400 <= T <= 1500


@pytest.mark.parametrize("kind", fam.KINDS)
def test_positions(kind):
    for s in streams(kind):
        T = len(s.probs)
        for v in (s.start, s.end, s.start2):
            assert v is None or isinstance(v, int)
        if kind == "none":
            assert s.start is None and s.end is None and s.start2 is None
            continue
        assert 40 <= s.start <= 700
        assert last_change(s) + 150 <= T
        if kind == "transient":
            assert 1 <= s.end - s.start <= 3 and s.start2 is None
        elif kind == "episode":
            assert 20 <= s.end - s.start <= 150 and s.start2 is None
        elif kind == "two_changes":
            assert s.end is None and s.start2 - s.start >= 100
        else:
            assert s.end is None and s.start2 is None


def test_deterministic_and_unknown_kind():
    a = fam.make_streams(3, "episode", 4)
    b = fam.make_streams(3, "episode", 4)
    c = fam.make_streams(4, "episode", 4)
    for x, y in zip(a, b):
        assert np.array_equal(x.probs, y.probs) and np.array_equal(x.gaps, y.gaps)
        assert np.array_equal(x.face, y.face) and np.array_equal(x.true_emotion, y.true_emotion)
        assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
    assert not all(len(x.probs) == len(y.probs) and np.array_equal(x.probs, y.probs) for x, y in zip(a, c))
    with pytest.raises(ValueError):
        fam.make_streams(1, "sudden", 2)
    with pytest.raises(ValueError):
        fam.make_stream(np.random.default_rng(0), "sudden")


def test_starts_spread_over_range():
    starts = np.array([s.start for k in CHANGE_KINDS + ("placebo",) for s in streams(k)])
    assert starts.min() < 150 and starts.max() > 400


# ------------------------------------------------------------------ designed changes in true_emotion


def test_abrupt_pos_neg():
    ss = streams("abrupt_pos_neg", 60)
    d = np.array([neg(s, s.start) - neg(s, None, s.start) for s in ss])
    assert np.all(d > 0) and d.mean() > 0.25
    assert all(fam.neg_share(s.design["baseline"]) <= 0.35 + 1e-9 for s in ss)
    # exactly at start: the post at start is far more often negative than the one before
    jump = np.mean([np.isin(s.true_emotion[s.start], NEG) for s in ss]) - np.mean(
        [np.isin(s.true_emotion[s.start - 1], NEG) for s in ss])
    assert jump > 0.2


def test_abrupt_neg_pos():
    ss = streams("abrupt_neg_pos", 60)
    d = np.array([neg(s, s.start) - neg(s, None, s.start) for s in ss])
    assert np.all(d < 0) and d.mean() < -0.25
    assert all(fam.neg_share(s.design["baseline"]) >= 0.45 - 1e-9 for s in ss)
    jump = np.mean([np.isin(s.true_emotion[s.start], NEG) for s in ss]) - np.mean(
        [np.isin(s.true_emotion[s.start - 1], NEG) for s in ss])
    assert jump < -0.2


def test_gradual_moves_steadily():
    for s in streams("gradual"):
        base, new = s.design["regimes"]
        sign = np.sign(fam.neg_share(new) - fam.neg_share(base))
        L = s.design["ramp"]
        before, after = neg(s, None, s.start), neg(s, s.start + L)
        assert sign * (after - before) > 0.1
        assert tv(emp(s.true_emotion[s.start + L:]), new) < tv(emp(s.true_emotion[s.start + L:]), base)
    # pooled: the first half of the ramp sits between before and after
    ss = streams("gradual", 80)
    sg = [np.sign(fam.neg_share(s.design["regimes"][1]) - fam.neg_share(s.design["regimes"][0])) for s in ss]
    pre = np.mean([g * neg(s, None, s.start) for g, s in zip(sg, ss)])
    mid = np.mean([g * neg(s, s.start, s.start + s.design["ramp"] // 2) for g, s in zip(sg, ss)])
    post = np.mean([g * neg(s, s.start + s.design["ramp"]) for g, s in zip(sg, ss)])
    assert pre < mid < post


def test_small_shift():
    ss = streams("small_shift", 80)
    signed = []
    for s in ss:
        base, new = s.design["regimes"]
        delta = fam.neg_share(new) - fam.neg_share(base)
        assert 0.1 - 1e-9 <= abs(delta) <= 0.3 + 1e-9
        assert np.isclose(delta, s.design["delta"])
        signed.append(np.sign(delta) * (neg(s, s.start) - neg(s, None, s.start)))
    signed = np.array(signed)
    assert 0.08 < signed.mean() < 0.32
    assert np.mean(signed > 0) > 0.8
    assert {np.sign(s.design["delta"]) for s in ss} == {-1.0, 1.0}


def test_transient():
    ss = streams("transient", 80)
    during = np.mean([neg(s, s.start, s.end) for s in ss])
    before = np.mean([neg(s, s.start - 10, s.start) for s in ss])
    after = np.mean([neg(s, s.end, s.end + 10) for s in ss])
    assert during > before + 0.3 and during > after + 0.3
    for s in ss:
        assert 1 <= s.end - s.start <= 3
        # back to baseline from end: after the dip the felt emotions follow the baseline, not the dip
        base, dip = s.design["regimes"]
        after = emp(s.true_emotion[s.end:])
        assert tv(after, base) < tv(after, dip)
        assert tv(base, dip) >= 0.35 - 1e-9


def test_episode_returns():
    closer = []
    for s in streams("episode", 60):
        a = emp(s.true_emotion[: s.start])
        b = emp(s.true_emotion[s.start: s.end])
        c = emp(s.true_emotion[s.end:])
        base, spell = s.design["regimes"]
        assert tv(b, c) > tv(a, c) + 0.1  # it recovered: after the spell looks like before it
        assert tv(c, base) < tv(c, spell)
        closer.append(tv(b, spell) < tv(b, base))
    assert np.mean(closer) > 0.9  # during the spell the felt emotions follow the spell's regime


def test_two_changes_second_moves_away():
    for s in streams("two_changes", 60):
        base, r1, r2 = s.design["regimes"]
        a = emp(s.true_emotion[: s.start])
        b = emp(s.true_emotion[s.start: s.start2])
        c = emp(s.true_emotion[s.start2:])
        assert tv(a, b) > 0.15  # the first change happened
        assert tv(b, c) > 0.15  # the second one moved away from the first regime
        assert tv(c, r1) > tv(b, r1) + 0.1
        assert tv(r2, r1) >= 0.3 - 1e-9


@pytest.mark.parametrize("kind", ("placebo", "none"))
def test_no_designed_change(kind):
    ss = streams(kind, 40)
    diffs = []
    for s in ss:
        assert len(s.design["regimes"]) == 1
        cut = s.start if kind == "placebo" else len(s.probs) // 2
        diffs.append(neg(s, cut) - neg(s, None, cut))
    diffs = np.array(diffs)
    assert abs(diffs.mean()) < 0.05 and np.mean(np.abs(diffs)) < 0.1


# ------------------------------------------------------------------ what the classifier sees


def test_classifier_imperfect_and_user_dependent():
    ss = streams("none", 60)
    accs, shuffled = [], []
    rng = np.random.default_rng(0)
    for s in ss:
        f = s.face
        pred = s.probs[f].argmax(axis=1)
        true = s.true_emotion[f]
        accs.append((pred == true).mean())
        shuffled.append((pred == rng.permutation(true)).mean())
    accs = np.array(accs)
    assert 1 / 7 < accs.mean() < 0.75
    assert accs.mean() > np.mean(shuffled) + 0.03  # it carries information beyond the base rates
    assert accs.max() < 0.95
    assert accs.std() > 0.03 and accs.max() - accs.min() > 0.15


def test_faceless_posts_exist():
    ss = streams("none", 40)
    share = np.array([1 - s.face.mean() for s in ss])
    assert np.all(share > 0) and share.mean() > 0.2
    assert share.std() > 0.02  # photo habits differ
    s = ss[0]
    assert np.allclose(s.probs[~s.face].sum(axis=1), 1.0, atol=1e-5)


def test_posting_habits_vary():
    ss = streams("none", 40)
    g = np.concatenate([s.gaps[1:] for s in ss])
    assert np.mean(g < 3600) > 0.05 and np.mean(g > 7 * 86400) > 0.005
    medians = np.array([np.median(s.gaps[1:]) for s in ss])
    assert medians.max() > 10 * medians.min()


# ------------------------------------------------------------------ cost


def test_generation_cost():
    from tests.generation_cost import assert_cheap

    assert_cheap(fam.make_streams)
