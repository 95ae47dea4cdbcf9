"""Contract and intended properties of the blind12 stream family (model/families/blind12.py)."""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from tests.generation_cost import assert_cheap

NEG = np.array([0, 1, 2, 4])  # angry, disgust, fear, sad
WINDOW = 150


def _load() -> ModuleType:
    # Loaded by path so the test depends on nothing else in the package.
    path = Path(__file__).resolve().parents[1] / "model" / "families" / "blind12.py"
    name = "_blind12_under_test"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(mod)
    return mod


b12 = _load()


@lru_cache(maxsize=None)
def streams(kind: str, n: int = 60, seed: int = 11) -> list[Any]:
    return b12.make_streams(seed, kind, n)


def neg_share(s: Any, lo: int, hi: int) -> float:
    lo, hi = max(0, lo), min(len(s.gaps), hi)
    return float(np.isin(s.true_emotion[lo:hi], NEG).mean())


def before_after(s: Any, shift: int = 0) -> tuple[float, float]:
    """Negative share of the true emotions in WINDOW posts before `start` and after start+shift."""
    return neg_share(s, s.start - WINDOW, s.start), neg_share(s, s.start + shift, s.start + shift + WINDOW)


def test_names() -> None:
    assert b12.NAME == "blind12"
    assert b12.KINDS == (
        "none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift",
        "transient", "episode", "two_changes", "placebo",
    )


@pytest.mark.parametrize("kind", b12.KINDS)
def test_stream_arrays(kind: str) -> None:
    for s in streams(kind)[:8]:
        t = len(s.gaps)
        assert s.kind == kind
        assert s.probs.shape == (t, 7) and s.gaps.shape == (t,) and s.face.shape == (t,)
        assert s.face.dtype == np.bool_
        assert np.isfinite(s.probs).all() and (s.probs >= 0).all()
        np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-9)
        assert s.gaps[0] == 0.0 and (s.gaps >= 0).all() and np.isfinite(s.gaps).all()
        assert s.true_emotion is not None and s.true_emotion.shape == (t,)
        assert np.issubdtype(s.true_emotion.dtype, np.integer)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        assert 200 <= t <= 2500


def test_deterministic_and_seeded_per_kind() -> None:
    a, b = b12.make_streams(5, "gradual", 3), b12.make_streams(5, "gradual", 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.probs, y.probs)
        np.testing.assert_array_equal(x.gaps, y.gaps)
        np.testing.assert_array_equal(x.face, y.face)
        assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
    # a longer list begins with the shorter one
    np.testing.assert_array_equal(b12.make_streams(5, "gradual", 1)[0].probs, a[0].probs)
    other_seed = b12.make_streams(6, "gradual", 1)[0]
    assert other_seed.probs.shape != a[0].probs.shape or not np.allclose(other_seed.probs, a[0].probs)
    # kinds do not share draws: none and placebo differ even for the same seed
    n0, p0 = b12.make_streams(5, "none", 1)[0], b12.make_streams(5, "placebo", 1)[0]
    assert len(n0.gaps) != len(p0.gaps) or not np.allclose(n0.gaps, p0.gaps)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError):
        b12.make_streams(0, "sudden", 1)
    with pytest.raises(ValueError):
        b12.make_stream(np.random.default_rng(0), "nothing")


@pytest.mark.parametrize("kind", b12.KINDS)
def test_positions(kind: str) -> None:
    for s in streams(kind):
        t = len(s.gaps)
        if kind == "none":
            assert s.start is None and s.end is None and s.start2 is None
            assert 1500 <= t <= 2500
            continue
        assert isinstance(s.start, int) and 30 <= s.start < t
        if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "placebo"):
            assert s.end is None and s.start2 is None
            assert t - s.start >= 150
        elif kind == "transient":
            assert s.start2 is None and 1 <= s.end - s.start <= 3 and t - s.end >= 150
        elif kind == "episode":
            assert s.start2 is None and 20 <= s.end - s.start <= 90 and t - s.end >= 200
        elif kind == "two_changes":
            assert s.end is None and s.start2 - s.start >= 100 and t - s.start2 >= 150


def test_abrupt_changes_move_the_negative_share_their_way() -> None:
    up = np.array([before_after(s) for s in streams("abrupt_pos_neg")])
    down = np.array([before_after(s) for s in streams("abrupt_neg_pos")])
    assert up[:, 0].mean() < 0.35 and up[:, 1].mean() > 0.5
    assert down[:, 0].mean() > 0.5 and down[:, 1].mean() < 0.35
    assert np.mean(up[:, 1] - up[:, 0] > 0.1) > 0.85
    assert np.mean(down[:, 0] - down[:, 1] > 0.1) > 0.85


def test_gradual_builds_up_over_a_ramp() -> None:
    early, late = [], []
    for s in streams("gradual"):
        pre, post = before_after(s, shift=100)  # ramps last at most 100 posts
        direction = np.sign(post - pre)
        early.append(direction * (neg_share(s, s.start, s.start + 8) - pre))
        late.append(direction * (post - pre))
    assert np.mean(late) > 0.25
    assert np.mean(early) < 0.6 * np.mean(late)


def test_small_shift_is_small_but_real() -> None:
    small = np.array([abs(np.subtract(*before_after(s))) for s in streams("small_shift")])
    big = np.array([abs(np.subtract(*before_after(s))) for s in streams("abrupt_pos_neg")])
    assert 0.08 < small.mean() < 0.3
    assert small.mean() < big.mean() - 0.15


@pytest.mark.parametrize("kind", ["none", "placebo"])
def test_no_change_kinds_keep_their_baseline(kind: str) -> None:
    diffs = []
    for s in streams(kind):
        at = s.start if s.start is not None else len(s.gaps) // 2
        pre, post = neg_share(s, at - WINDOW, at), neg_share(s, at, at + WINDOW)
        diffs.append(post - pre)
    assert abs(np.mean(diffs)) < 0.04
    assert np.mean(np.abs(diffs)) < 0.12


def test_transient_is_a_short_opposite_mood() -> None:
    checked, faces, returns = 0, [], []
    for s in streams("transient", n=80):
        pre = neg_share(s, s.start - WINDOW, s.start)
        dip = np.isin(s.true_emotion[s.start : s.end], NEG)
        rest = np.isin(np.delete(s.true_emotion, np.arange(s.start, s.end)), NEG).mean()  # the baseline
        if rest < 0.3:
            assert dip.all()
            checked += 1
        elif rest > 0.65:
            assert not dip.any()
            checked += 1
        faces.extend(s.face[s.start : s.end])
        returns.append(abs(neg_share(s, s.end, s.end + WINDOW) - pre))
    assert checked >= 20
    assert np.mean(faces) > 0.6  # mostly selfies showing the moment
    assert np.mean(returns) < 0.12  # nothing lasting follows


def test_episode_dips_and_recovers() -> None:
    dip, back = [], []
    for s in streams("episode"):
        pre = neg_share(s, s.start - WINDOW, s.start)
        dip.append(neg_share(s, s.start, s.end) - pre)
        back.append(neg_share(s, s.end, s.end + WINDOW) - pre)
    assert np.mean(dip) > 0.25 and np.mean(np.array(dip) > 0.05) > 0.8
    assert abs(np.mean(back)) < 0.07 and np.mean(np.abs(back)) < 0.12


def test_two_changes_both_last() -> None:
    first, second = [], []
    for s in streams("two_changes"):
        pre = neg_share(s, s.start - WINDOW, s.start)
        mid = neg_share(s, s.start + 15, s.start2)
        post = neg_share(s, s.start2 + 15, s.start2 + 15 + WINDOW)
        first.append(abs(mid - pre))
        second.append(abs(post - mid))
    assert np.mean(first) > 0.18 and np.mean(second) > 0.18


def test_classifier_quality_varies_by_user_within_a_plausible_range() -> None:
    rng = np.random.default_rng(3)
    mix = np.array([0.1, 0.03, 0.07, 0.35, 0.15, 0.05, 0.25])
    accs, tops = [], []
    for _ in range(60):
        user = b12._draw_user(rng)
        shown = rng.choice(7, size=1500, p=mix)
        probs = b12._classify(rng, user.conf_own[shown], user.margin, np.full(1500, user.tau), user.noise,
                              np.zeros((1500, 7)))
        accs.append(np.mean(probs.argmax(axis=1) == shown))
        tops.append(probs.max(axis=1).mean())
    assert 0.55 < np.median(accs) < 0.75
    assert min(accs) > 0.4 and max(accs) < 0.9 and max(accs) - min(accs) > 0.12
    assert min(tops) < 0.55 and max(tops) > 0.9  # under- and over-confident users


def test_faces_and_content_vary_by_user() -> None:
    shares = np.array([s.face.mean() for s in streams("none")])
    assert shares.min() > 0.03 and shares.max() < 0.99
    assert shares.std() > 0.08


def test_posting_is_bursty_with_a_day_night_rhythm() -> None:
    heavy, rhythm = [], []
    for s in streams("none", n=30):
        g = s.gaps[1:]
        heavy.append(np.quantile(g, 0.99) / np.median(g) > 15)  # exponential gaps would give about 6.6
        hours = np.cumsum(s.gaps) % 86400 // 3600
        counts = np.bincount(hours.astype(int), minlength=24)
        rhythm.append(counts.max() > 3 * max(counts.min(), 1))
    assert np.mean(heavy) > 0.9 and np.mean(rhythm) > 0.9


def test_moods_persist_within_a_sitting() -> None:
    close_same, far_same = [], []
    for s in streams("none", n=30):
        same = s.true_emotion[1:] == s.true_emotion[:-1]
        close_same.extend(same[s.gaps[1:] < 600])
        far_same.extend(same[s.gaps[1:] > 86400])
    assert np.mean(close_same) > np.mean(far_same) + 0.1


def test_generation_is_fast() -> None:
    out = b12.make_streams(1, "none", 20)
    assert sum(len(s.gaps) for s in out) > 30000
    assert_cheap(b12.make_streams)  # against a yardstick timed in the same run
