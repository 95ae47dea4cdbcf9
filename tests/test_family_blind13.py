"""Contract and intended-property tests for the blind13 stream family."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.generation_cost import assert_cheap


def _load():
    path = Path(__file__).resolve().parents[1] / "model" / "families" / "blind13.py"
    name = "_blind13_under_test"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


B = _load()
NEG = np.array([True, True, True, False, True, False, False])
CHANGE_KINDS = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift",
                "transient", "episode", "two_changes", "placebo")
_CACHE = {}


def streams(kind, n=60, seed=2024):
    key = (kind, n, seed)
    if key not in _CACHE:
        _CACHE[key] = B.make_streams(seed, kind, n)
    return _CACHE[key]


def neg_share(s, a, b):
    a, b = max(0, a), min(len(s.true_emotion), b)
    return float(NEG[s.true_emotion[a:b]].mean())


# ----------------------------------------------------------------------------- contract

def test_module_constants():
    assert B.NAME == "blind13"
    assert B.KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift",
                       "transient", "episode", "two_changes", "placebo")
    assert B.__doc__ and len(B.__doc__) > 200


@pytest.mark.parametrize("kind", B.KINDS)
def test_shapes_dtypes_and_rows(kind):
    for s in streams(kind, n=8, seed=7):
        T = len(s.true_emotion)
        assert s.kind == kind
        assert s.probs.dtype == np.float32 and s.probs.shape == (T, 7)
        assert s.gaps.dtype == np.float64 and s.gaps.shape == (T,)
        assert s.face.dtype == np.bool_ and s.face.shape == (T,)
        assert np.issubdtype(s.true_emotion.dtype, np.integer) and s.true_emotion.shape == (T,)
        assert np.all(np.isfinite(s.probs)) and np.all(s.probs >= 0)
        np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps[0] == 0.0 and np.all(s.gaps[1:] > 0) and np.all(np.isfinite(s.gaps))
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        for attr in ("start", "end", "start2"):
            v = getattr(s, attr)
            assert v is None or isinstance(v, int)
        if kind == "none":
            assert s.start is None and s.end is None and s.start2 is None
        else:
            assert s.start is not None
        assert (s.end is not None) == (kind in ("transient", "episode"))
        assert (s.start2 is not None) == (kind == "two_changes")


def test_unknown_kind_raises():
    with pytest.raises(ValueError):
        B.make_stream(np.random.default_rng(0), "sideways")
    with pytest.raises(ValueError):
        B.make_streams(0, "sideways", 3)


def test_determinism_and_variety():
    a = B.make_streams(11, "episode", 4)
    b = B.make_streams(11, "episode", 4)
    for x, y in zip(a, b):
        assert x.start == y.start and x.end == y.end
        np.testing.assert_array_equal(x.probs, y.probs)
        np.testing.assert_array_equal(x.gaps, y.gaps)
        np.testing.assert_array_equal(x.face, y.face)
        np.testing.assert_array_equal(x.true_emotion, y.true_emotion)
    c = B.make_streams(12, "episode", 4)
    assert any(len(x.gaps) != len(y.gaps) or not np.array_equal(x.gaps, y.gaps) for x, y in zip(a, c))
    # different kinds with the same seed are different users
    p = B.make_streams(11, "placebo", 4)
    q = B.make_streams(11, "abrupt_pos_neg", 4)
    assert all(len(x.gaps) != len(y.gaps) or not np.array_equal(x.gaps, y.gaps) for x, y in zip(p, q))
    # users within one call differ from each other
    assert len({round(float(s.gaps.sum()), 3) for s in a}) == 4


def test_generation_is_fast():
    for kind in ("none", "two_changes"):
        assert len(B.make_streams(99, kind, 100)) == 100
    assert_cheap(B.make_streams)  # against a yardstick timed in the same run


# ----------------------------------------------------------------------------- positions

def test_lengths_and_change_positions():
    for s in streams("none"):
        assert 1500 <= len(s.true_emotion) <= 2500
    for kind in CHANGE_KINDS:
        for s in streams(kind):
            T = len(s.true_emotion)
            assert 300 <= T <= 700
            assert 30 <= s.start <= 250
            assert T - s.start >= 150
            if kind == "transient":
                assert 1 <= s.end - s.start <= 3
            if kind == "episode":
                assert 20 <= s.end - s.start <= 110 and T - s.end >= 100
            if kind == "two_changes":
                assert s.start2 - s.start >= 100 and T - s.start2 >= 150
            if kind == "gradual":
                ramp = s.meta["ramp"]
                assert 20 <= ramp <= 200 and T - s.start - ramp >= 150


def test_starts_are_spread():
    starts = np.array([s.start for s in streams("placebo")] + [s.start for s in streams("abrupt_pos_neg")])
    assert starts.min() < 80 and starts.max() > 170 and np.std(starts) > 30


# ----------------------------------------------------------------------------- true emotions

def _deltas(kind, after_offset=0, W=150):
    d = []
    for s in streams(kind):
        a = s.start + after_offset
        d.append(neg_share(s, a, a + W) - neg_share(s, s.start - W, s.start))
    return np.array(d)


def test_abrupt_pos_neg_turns_negative():
    d = _deltas("abrupt_pos_neg")
    assert np.mean(d > 0) >= 0.9 and d.mean() >= 0.2
    before = np.array([neg_share(s, 0, s.start) for s in streams("abrupt_pos_neg")])
    assert np.median(before) < 0.3


def test_abrupt_neg_pos_turns_positive():
    d = _deltas("abrupt_neg_pos")
    assert np.mean(d < 0) >= 0.9 and d.mean() <= -0.2
    before = np.array([neg_share(s, 0, s.start) for s in streams("abrupt_neg_pos")])
    assert np.median(before) > 0.4


def test_gradual_moves_in_declared_direction():
    agree, sizes = [], []
    for s in streams("gradual"):
        r = s.meta["ramp"]
        d = neg_share(s, s.start + r, s.start + r + 150) - neg_share(s, s.start - 150, s.start)
        agree.append(np.sign(d) == s.meta["direction"])
        sizes.append(d * s.meta["direction"])
        # mid-ramp sits between the two regimes on average (checked pooled below)
    assert np.mean(agree) >= 0.9 and np.mean(sizes) >= 0.2
    # the change is spread: the first part of the ramp has moved less than the end state
    early, late = [], []
    for s in streams("gradual"):
        r = s.meta["ramp"]
        if r >= 60:
            base = neg_share(s, s.start - 150, s.start)
            early.append((neg_share(s, s.start, s.start + r // 3) - base) * s.meta["direction"])
            late.append((neg_share(s, s.start + r, s.start + r + 150) - base) * s.meta["direction"])
    assert len(early) >= 10 and np.mean(early) < np.mean(late)


def test_small_shift_is_small_and_directed():
    agree, sizes = [], []
    for s in streams("small_shift"):
        designed = s.meta["neg_after"] - s.meta["neg_before"]
        assert 0.09 <= abs(designed) <= 0.31
        d = neg_share(s, s.start, s.start + 150) - neg_share(s, s.start - 150, s.start)
        agree.append(np.sign(d) == np.sign(designed))
        sizes.append(abs(d))
    assert np.mean(agree) >= 0.75
    assert 0.07 <= np.mean(sizes) <= 0.33


def test_two_changes_both_move():
    a1, a2, s1, s2 = [], [], [], []
    for s in streams("two_changes"):
        d1 = neg_share(s, s.start, s.start2) - neg_share(s, s.start - 150, s.start)
        d2 = neg_share(s, s.start2, s.start2 + 150) - neg_share(s, s.start, s.start2)
        a1.append(np.sign(d1) == s.meta["direction"])
        a2.append(np.sign(d2) == s.meta["direction2"])
        s1.append(d1 * s.meta["direction"])
        s2.append(d2 * s.meta["direction2"])
    assert np.mean(a1) >= 0.85 and np.mean(a2) >= 0.85
    assert np.mean(s1) >= 0.15 and np.mean(s2) >= 0.15
    dirs = {(s.meta["direction"], s.meta["direction2"]) for s in streams("two_changes")}
    assert len(dirs) >= 3  # returns, escalations and overshoots all occur


def test_transient_is_short_dip():
    inside, base, after = [], [], []
    for s in streams("transient"):
        assert 1 <= s.end - s.start <= 3
        sign = s.meta["direction"]
        inside.append(neg_share(s, s.start, s.end) * sign)
        base.append(neg_share(s, s.start - 150, s.start) * sign)
        after.append(neg_share(s, s.end, s.end + 150) * sign)
    inside, base, after = map(np.array, (inside, base, after))
    assert np.mean(inside - base) >= 0.3
    assert abs(np.mean(after - base)) < 0.05


def test_episode_recovers():
    during, rec = [], []
    for s in streams("episode"):
        b = neg_share(s, s.start - 150, s.start)
        during.append(neg_share(s, s.start, s.end) - b)
        rec.append(neg_share(s, s.end, s.end + 100) - b)
    during, rec = np.array(during), np.array(rec)
    assert np.mean(during > 0.05) >= 0.85 and during.mean() >= 0.2
    assert abs(rec.mean()) < 0.05
    assert np.mean(np.abs(rec) < 0.2) >= 0.85


@pytest.mark.parametrize("kind", ["none", "placebo"])
def test_no_change_users_stay_put(kind):
    d = []
    for s in streams(kind):
        if kind == "none":
            T = len(s.true_emotion)
            d.append(neg_share(s, 2 * T // 3, T) - neg_share(s, 0, T // 3))
        else:
            d.append(neg_share(s, s.start, s.start + 150) - neg_share(s, s.start - 150, s.start))
        assert s.meta["neg_after"] is None
    d = np.array(d)
    # natural mood swings exist, but there is no systematic move and no change-sized jump
    assert abs(d.mean()) < 0.03
    assert np.mean(np.abs(d)) < 0.1
    assert np.mean(np.abs(d) < 0.2) >= 0.88
    assert np.mean(np.abs(d)) < 0.5 * np.mean(np.abs(_deltas("abrupt_pos_neg")))


# ----------------------------------------------------------------------------- observation model

def test_faceless_posts_realistic():
    rates, steadier, nf_max, f_max = [], [], [], []
    for kind in ("none", "placebo", "abrupt_pos_neg"):
        for s in streams(kind):
            rates.append(1.0 - s.face.mean())
            assert 0 < s.face.sum() < len(s.face)
            nf, f = s.probs[~s.face], s.probs[s.face]
            # faceless rows sit near the classifier's prior: they vary less than face rows
            steadier.append(nf.std(0).mean() < f.std(0).mean())
            nf_max.append(nf.max(1))
            f_max.append(f.max(1))
    assert np.mean(steadier) >= 0.85
    assert np.median(np.concatenate(nf_max)) < np.median(np.concatenate(f_max))
    rates = np.array(rates)
    assert 0.3 <= rates.mean() <= 0.7
    assert rates.min() < 0.35 and rates.max() > 0.65  # users differ in photo habits


def test_classifier_accuracy_realistic_and_personal():
    accs = []
    for kind in ("none", "placebo", "episode", "abrupt_neg_pos"):
        for s in streams(kind):
            if s.face.sum() >= 40:
                am = s.probs[s.face].argmax(1)
                accs.append(float((am == s.true_emotion[s.face]).mean()))
    accs = np.array(accs)
    assert len(accs) >= 150
    assert 0.48 <= np.median(accs) <= 0.68
    assert np.mean((accs >= 0.35) & (accs <= 0.85)) >= 0.9
    assert accs.std() > 0.04


def test_gaps_heavy_tailed_with_bursts_and_silences():
    g = np.concatenate([s.gaps[1:] for s in streams("none", n=30)])
    assert np.mean(g < 600) > 0.2  # bursts within sessions
    assert np.mean(g > 86400) > 0.03  # day-long pauses
    assert g.max() > 14 * 86400  # long silences exist
    assert np.percentile(g, 99) / np.median(g) > 100
