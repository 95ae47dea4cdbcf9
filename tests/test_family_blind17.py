"""Tests of the blind17 family: contract, positions and designed properties."""

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "model" / "families" / "blind17.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("blind17_under_test", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["blind17_under_test"] = module
    spec.loader.exec_module(module)
    return module


b17 = _load()
NEG = [0, 1, 2, 4]
CHANGE_KINDS = [k for k in b17.KINDS if k != "none"]


@functools.lru_cache(maxsize=None)
def streams(kind: str, n: int, seed: int = 17) -> tuple:
    out = tuple(b17.make_streams(seed, kind, n))
    assert len(out) == n  # loops over the batch are never vacuous
    return out


def true_neg(s) -> np.ndarray:
    return s.true_probs[:, NEG].sum(axis=1)


def window_delta(
    x: np.ndarray, at: int, before: int = 100, after: int = 150, stop: int | None = None
) -> float:
    hi = min(len(x) if stop is None else stop, at + after)
    return float(x[at:hi].mean() - x[max(0, at - before) : at].mean())


def test_constants() -> None:
    assert b17.NAME == "blind17"
    assert b17.KINDS == (
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


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError):
        b17.make_stream(np.random.default_rng(0), "sudden")
    with pytest.raises(ValueError):
        b17.make_streams(0, "nonsense", 2)


@pytest.mark.parametrize("kind", b17.KINDS)
def test_contract_shapes_and_types(kind: str) -> None:
    ss = streams(kind, 4)
    assert len(ss) == 4
    for s in ss:
        n = len(s.gaps)
        assert s.kind == kind
        assert s.probs.dtype == np.float32 and s.probs.shape == (n, 7)
        assert np.all(s.probs >= 0.0)
        np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps.dtype == np.float64 and s.gaps.shape == (n,)
        assert (1500 <= n <= 3000) if kind == "none" else (250 <= n <= 800)
        assert s.true_probs.dtype == np.float32 and s.true_probs.shape == (n, 7)
        assert np.all(s.true_probs >= 0.0)
        np.testing.assert_allclose(s.true_probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps[0] == 0.0 and np.all(s.gaps[1:] > 0.0)
        assert s.face.dtype == np.bool_ and s.face.shape == (n,)
        assert np.issubdtype(
            s.true_emotion.dtype, np.integer
        ) and s.true_emotion.shape == (n,)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        for pos in (s.start, s.end, s.start2):
            assert pos is None or (isinstance(pos, int) and 0 <= pos <= n)


def test_determinism_by_seed() -> None:
    a = b17.make_streams(5, "two_changes", 3)
    b = b17.make_streams(5, "two_changes", 3)
    c = b17.make_streams(6, "two_changes", 3)
    assert len(a) == len(b) == len(c) == 3
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.probs, y.probs)
        np.testing.assert_array_equal(x.gaps, y.gaps)
        np.testing.assert_array_equal(x.face, y.face)
        np.testing.assert_array_equal(x.true_emotion, y.true_emotion)
        assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
    assert any(
        len(x.gaps) != len(z.gaps) or not np.array_equal(x.probs, z.probs)
        for x, z in zip(a, c)
    )
    # A longer batch begins with the same streams.
    d = b17.make_streams(5, "two_changes", 4)
    assert len(d) == 4
    np.testing.assert_array_equal(d[2].probs, a[2].probs)
    for x, y in zip(a, d[:3]):
        np.testing.assert_array_equal(x.probs, y.probs)
        np.testing.assert_array_equal(x.gaps, y.gaps)


def test_none_streams_long_without_positions() -> None:
    for s in streams("none", 4):
        assert 1500 <= len(s.gaps) <= 3000
        assert s.start is None and s.end is None and s.start2 is None


def test_change_streams_length_and_start_window() -> None:
    for kind in CHANGE_KINDS:
        for s in streams(kind, 12):
            assert 250 <= len(s.gaps) <= 800, kind
            assert 40 <= s.start <= 250, kind
            assert len(s.gaps) - s.start >= 100, kind


def test_lasting_kinds_positions() -> None:
    for kind in (
        "abrupt_pos_neg",
        "abrupt_neg_pos",
        "gradual",
        "small_shift",
        "placebo",
    ):
        for s in streams(kind, 12):
            assert s.end is None and s.start2 is None, kind


def test_transient_is_short_and_one_evening() -> None:
    drift, dips, in_dip, usual_gaps = [], [], [], []
    for s in streams("transient", 12):
        assert s.start2 is None
        assert 1 <= s.end - s.start <= 3
        assert s.end < len(s.gaps)
        inner = s.gaps[s.start + 1 : s.end]
        assert np.all(inner <= 3600.0)
        in_dip.extend(inner.tolist())
        usual_gaps.extend(s.gaps[1 : s.start].tolist())
        dip = true_neg(s)[s.start : s.end].mean()
        usual = true_neg(s)[max(0, s.start - 100) : s.start].mean()
        assert abs(dip - usual) > 0.1  # a clearly different mood that evening
        dips.append(abs(dip - usual))
        drift.append(true_neg(s)[s.end : s.end + 100].mean() - usual)
    assert np.mean(dips) > 0.25
    # The in-evening gap check above must have covered some gaps, and they are
    # shorter than the usual spacing of posts.
    assert len(in_dip) >= 3
    assert np.median(in_dip) < np.median(usual_gaps)
    assert abs(np.mean(drift)) < 0.05  # back to the usual pattern right after


def test_episode_positions_and_recovery() -> None:
    deltas_in, deltas_out = [], []
    for s in streams("episode", 16):
        assert s.start2 is None
        assert s.end - s.start >= 30
        assert len(s.gaps) - s.end >= 100
        x = true_neg(s)
        before = x[max(0, s.start - 100) : s.start].mean()
        deltas_in.append(x[s.start : s.end].mean() - before)
        deltas_out.append(x[s.end : s.end + 150].mean() - before)
    assert np.mean(np.array(deltas_in) > 0.05) >= 0.9
    assert np.mean(deltas_in) > 0.15
    assert abs(np.mean(deltas_out)) < 0.06


def test_two_changes_positions_and_both_real() -> None:
    firsts, seconds = [], []
    for s in streams("two_changes", 12):
        assert s.end is None
        assert s.start2 - s.start >= 100
        assert len(s.gaps) - s.start2 >= 100
        x = true_neg(s)
        firsts.append(abs(window_delta(x, s.start, stop=s.start2)))
        seconds.append(abs(window_delta(x, s.start2, before=80)))
    assert np.mean(firsts) > 0.08 and np.mean(seconds) > 0.08
    assert np.mean(np.minimum(firsts, seconds) > 0.02) >= 0.75


def test_placebo_has_no_change_in_truth() -> None:
    deltas = [window_delta(true_neg(s), s.start) for s in streams("placebo", 16)]
    assert abs(np.mean(deltas)) < 0.04
    assert np.median(np.abs(deltas)) < 0.07  # only ordinary ups and downs
    assert np.max(np.abs(deltas)) < 0.25


def test_abrupt_pos_neg_direction() -> None:
    ss = streams("abrupt_pos_neg", 16)
    deltas = [window_delta(true_neg(s), s.start) for s in ss]
    usual = [true_neg(s)[: s.start].mean() for s in ss]
    assert all(s.temperament != "dour" for s in ss)
    assert np.mean(usual) < 0.4 and max(usual) < 0.6
    assert np.mean(np.array(deltas) > 0) >= 0.8
    assert np.mean(deltas) > 0.1


def test_abrupt_neg_pos_direction() -> None:
    ss = streams("abrupt_neg_pos", 16)
    deltas = [window_delta(true_neg(s), s.start) for s in ss]
    assert all(s.temperament == "dour" for s in ss)
    assert np.mean([true_neg(s)[: s.start].mean() for s in ss]) > 0.4
    assert np.mean(np.array(deltas) < 0) >= 0.8
    assert np.mean(deltas) < -0.1
    # Happier or calmer, not another negative emotion.
    cheer = [window_delta(s.true_probs[:, [3, 6]].sum(axis=1), s.start) for s in ss]
    assert np.mean(cheer) > 0.05 and np.mean(np.array(cheer) > 0) >= 0.75


def test_small_shift_size() -> None:
    sizes = np.abs(
        [window_delta(true_neg(s), s.start) for s in streams("small_shift", 16)]
    )
    assert 0.07 <= np.median(sizes) <= 0.3
    assert np.percentile(sizes, 90) < 0.4


def test_gradual_moves_over_a_ramp() -> None:
    early, late = [], []
    for s in streams("gradual", 12):
        x = true_neg(s)
        before = x[max(0, s.start - 100) : s.start].mean()
        early.append(abs(x[s.start : s.start + 10].mean() - before))
        late.append(abs(x[-100:].mean() - before))
    assert np.mean(late) > np.mean(early) + 0.05


def test_classifier_shows_less_than_truth() -> None:
    truth, seen = [], []
    for s in streams("abrupt_pos_neg", 16) + streams("abrupt_neg_pos", 16):
        truth.append(abs(window_delta(true_neg(s), s.start)))
        seen.append(abs(window_delta(s.probs[:, NEG].sum(axis=1), s.start)))
    assert np.mean(seen) < 0.7 * np.mean(truth)


def test_classifier_quality_differs_and_faceless_uninformative() -> None:
    accs, faceless = [], []
    for s in streams("placebo", 16):
        hit = s.probs.argmax(axis=1) == s.true_emotion
        accs.append(hit[s.face].mean())
        faceless.append(hit[~s.face].mean())
        assert 0.15 < s.face.mean() < 0.95
    assert 0.35 < np.mean(accs) < 0.75
    assert np.std(accs) > 0.03
    assert np.mean(faceless) < np.mean(accs) - 0.1


def test_posting_times_cluster_and_spread() -> None:
    short, long = [], []
    for s in streams("none", 3) + streams("placebo", 16):
        g = s.gaps[1:]
        assert 600.0 < np.median(g) < 2 * 86400.0
        short.append(np.mean(g < 3600.0))  # bursts, mostly on days off
        long.append(np.mean(g > 12 * 3600.0))  # quiet spells, long shifts
    assert np.mean(short) > 0.2 and np.mean(long) > 0.05


def test_none_has_ups_and_downs_but_no_lasting_change() -> None:
    for s in streams("none", 3):
        x = true_neg(s)
        w = np.convolve(x, np.ones(50) / 50, mode="valid")
        assert w.max() - w.min() > 0.05
        half = len(x) // 2
        assert abs(x[:half].mean() - x[half:].mean()) < 0.1


def test_true_emotion_follows_true_probs() -> None:
    s = streams("none", 3)[0]
    freq = np.bincount(s.true_emotion, minlength=7) / len(s.true_emotion)
    np.testing.assert_allclose(freq, s.true_probs.mean(axis=0), atol=0.04)
