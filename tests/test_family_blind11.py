"""Contract tests for the blind-11 emotion-timeline family."""

import dataclasses
import functools

import numpy as np
import pytest

from model.families import blind11 as fam
from tests.generation_cost import assert_cheap

NEG = [0, 1, 2, 4]
CHANGE_KINDS = [k for k in fam.KINDS if k != "none"]


@functools.lru_cache(maxsize=None)
def streams(kind: str, n: int = 40, seed: int = 11) -> tuple:
    return tuple(fam.make_streams(seed, kind, n))


def neg_share(e: np.ndarray) -> float:
    return float(np.isin(e, NEG).mean())


def hist(e: np.ndarray) -> np.ndarray:
    return np.bincount(e, minlength=7) / len(e)


def frac(xs) -> float:
    return float(np.mean(np.asarray(xs, dtype=bool)))


def test_constants():
    assert fam.LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert fam.KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
                         "episode", "two_changes", "placebo")
    assert dataclasses.is_dataclass(fam.Stream)
    names = [f.name for f in dataclasses.fields(fam.Stream)]
    assert set(names) == {"kind", "probs", "gaps", "face", "start", "end", "start2", "true_emotion"}


@pytest.mark.parametrize("kind", fam.KINDS)
def test_shapes_and_dtypes(kind):
    for s in streams(kind, 8):
        T = len(s.gaps)
        assert s.kind == kind
        assert isinstance(s.probs, np.ndarray) and s.probs.shape == (T, 7) and s.probs.dtype == np.float32
        assert s.gaps.shape == (T,) and s.gaps.dtype == np.float64
        assert s.face.shape == (T,) and s.face.dtype == np.bool_
        assert s.true_emotion.shape == (T,) and np.issubdtype(s.true_emotion.dtype, np.integer)
        assert np.all(np.isfinite(s.probs)) and np.all(s.probs >= 0)
        np.testing.assert_allclose(s.probs.sum(1), 1.0, atol=1e-5)
        assert s.gaps[0] == 0.0 and np.all(s.gaps[1:] > 0) and np.all(np.isfinite(s.gaps))
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        assert 0.05 < s.face.mean() < 0.98


def test_seeding_reproducible_and_distinct():
    for kind in ("none", "episode", "two_changes"):
        a = fam.make_streams(5, kind, 3)
        b = fam.make_streams(5, kind, 3)
        for x, y in zip(a, b):
            assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
            np.testing.assert_array_equal(x.probs, y.probs)
            np.testing.assert_array_equal(x.gaps, y.gaps)
            np.testing.assert_array_equal(x.face, y.face)
            np.testing.assert_array_equal(x.true_emotion, y.true_emotion)
    c = fam.make_streams(6, "episode", 3)
    assert not all(len(x.gaps) == len(y.gaps) and np.array_equal(x.gaps, y.gaps)
                   for x, y in zip(fam.make_streams(5, "episode", 3), c))
    # same seed, different kinds: not identical draws
    firsts = {k: fam.make_streams(3, k, 1)[0] for k in fam.KINDS}
    for k1 in fam.KINDS:
        for k2 in fam.KINDS:
            if k1 < k2:
                g1, g2 = firsts[k1].gaps, firsts[k2].gaps
                m = min(len(g1), len(g2))
                assert not np.array_equal(g1[:m], g2[:m])
    # streams within one call differ from each other
    xs = fam.make_streams(9, "placebo", 4)
    assert len({(len(s.gaps), s.start) for s in xs}) > 1
    # make_stream with a generator is reproducible too
    s1 = fam.make_stream(np.random.default_rng(42), "gradual")
    s2 = fam.make_stream(np.random.default_rng(42), "gradual")
    np.testing.assert_array_equal(s1.probs, s2.probs)
    assert s1.start == s2.start


def test_unknown_kind_rejected():
    with pytest.raises(ValueError):
        fam.make_streams(0, "nonsense", 1)
    with pytest.raises(ValueError):
        fam.make_stream(np.random.default_rng(0), "nonsense")


@pytest.mark.parametrize("kind", fam.KINDS)
def test_change_positions(kind):
    for s in streams(kind):
        T = len(s.gaps)
        if kind == "none":
            assert s.start is None and s.end is None and s.start2 is None
            assert 1500 <= T <= 3000
            continue
        assert isinstance(s.start, int) and 30 <= s.start <= 400
        last = s.start
        if kind in ("transient", "episode"):
            assert isinstance(s.end, int)
            if kind == "transient":
                assert 1 <= s.end - s.start <= 3
                assert T - s.end >= 150
            else:
                assert 10 <= s.end - s.start <= 60
                assert T - s.end >= 200
            last = s.end
        else:
            assert s.end is None
        if kind == "two_changes":
            assert isinstance(s.start2, int) and 100 <= s.start2 - s.start <= 300
            last = s.start2
        else:
            assert s.start2 is None
        assert T - last >= 150


def test_abrupt_pos_neg():
    d, post = [], []
    for s in streams("abrupt_pos_neg", 60):
        pre, aft = neg_share(s.true_emotion[: s.start]), neg_share(s.true_emotion[s.start:])
        d.append(aft - pre)
        post.append(aft)
        assert pre < 0.75
    assert frac(np.array(d) > 0.15) >= 0.9
    assert np.mean(d) > 0.3 and np.mean(post) > 0.55


def test_abrupt_neg_pos():
    d, pres = [], []
    for s in streams("abrupt_neg_pos", 60):
        pre, aft = neg_share(s.true_emotion[: s.start]), neg_share(s.true_emotion[s.start:])
        d.append(pre - aft)
        pres.append(pre)
        assert aft < 0.6
    assert frac(np.array(d) > 0.15) >= 0.9
    assert np.mean(d) > 0.3 and np.mean(pres) > 0.55


def test_gradual_changes_pattern():
    tv = []
    for s in streams("gradual", 60):
        pre = hist(s.true_emotion[: s.start])
        post = hist(s.true_emotion[s.start + 90:])  # ramps last at most 90 posts
        tv.append(0.5 * np.abs(pre - post).sum())
    assert frac(np.array(tv) > 0.15) >= 0.85
    assert np.mean(tv) > 0.25


def test_small_shift_is_small_but_real():
    d = np.array([neg_share(s.true_emotion[s.start:]) - neg_share(s.true_emotion[: s.start])
                  for s in streams("small_shift", 60)])
    assert 0.08 < np.mean(np.abs(d)) < 0.35
    assert frac(np.abs(d) < 0.5) == 1.0
    assert frac(np.abs(d) > 0.05) >= 0.75
    assert (d > 0).any() and (d < 0).any()  # both directions occur


def test_transient_dip_and_return():
    other, back = [], []
    for s in streams("transient", 60):
        e = s.true_emotion
        pre_neg = neg_share(e[: s.start]) >= 0.5
        dip_neg = np.isin(e[s.start: s.end], NEG)
        other.extend(dip_neg != pre_neg)
        back.append(abs(neg_share(e[s.end:]) - neg_share(e[: s.start])))
    assert frac(other) >= 0.7
    assert frac(np.array(back) < 0.15) >= 0.85


def test_episode_differs_then_returns():
    during, back = [], []
    for s in streams("episode", 60):
        e = s.true_emotion
        pre = neg_share(e[: s.start])
        during.append(abs(neg_share(e[s.start: s.end]) - pre))
        back.append(abs(neg_share(e[s.end:]) - pre))
    during, back = np.array(during), np.array(back)
    assert frac(during > 0.2) >= 0.85
    assert frac(back < 0.15) >= 0.85
    assert np.mean(during) > 3 * np.mean(back)


def test_two_changes_both_visible():
    d1, d2 = [], []
    for s in streams("two_changes", 60):
        e = s.true_emotion
        a, b, c = e[: s.start], e[s.start: s.start2], e[s.start2:]
        d1.append(abs(neg_share(b) - neg_share(a)))
        d2.append(0.5 * np.abs(hist(c) - hist(b)).sum())
    assert frac(np.array(d1) > 0.12) >= 0.85
    assert frac(np.array(d2) > 0.12) >= 0.85


@pytest.mark.parametrize("kind", ["none", "placebo"])
def test_no_change_is_stable(kind):
    # stable = one stationary personal pattern: halves agree on the negative share up to mood noise
    d = []
    for s in streams(kind, 30):
        e = s.true_emotion
        h = len(e) // 2
        d.append(abs(neg_share(e[:h]) - neg_share(e[h:])))
        if kind == "placebo":
            d.append(abs(neg_share(e[max(0, s.start - 100): s.start]) - neg_share(e[s.start: s.start + 100])) / 2)
    d = np.array(d)
    assert frac(d < 0.15) >= 0.9
    assert np.mean(d) < 0.07


def test_world_is_plausible():
    ss = streams("none", 12)
    g = np.concatenate([s.gaps[1:] for s in ss])
    assert np.median(g) < np.mean(g) / 3  # heavy-tailed, bursty posting
    assert (g < 120).mean() > 0.05 and (g > 86400).mean() > 0.01
    accs, users = [], []
    for s in ss:
        f = s.face
        accs.append(np.mean(s.probs[f].argmax(1) == s.true_emotion[f]))
        users.append(hist(s.true_emotion))
    assert 0.25 < np.mean(accs) < 0.85
    assert np.std(accs) > 0.02  # classifier quality varies by user
    assert np.max(np.std(users, axis=0)) > 0.05  # heterogeneous baselines


def test_fast_enough():
    assert len(fam.make_streams(123, "abrupt_pos_neg", 100)) == 100
    assert_cheap(fam.make_streams)  # against a yardstick timed in the same run
