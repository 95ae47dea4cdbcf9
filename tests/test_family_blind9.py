"""Contract tests of model/families/blind9.py: the simulated FER timelines of social-media users."""

from __future__ import annotations

import numpy as np
import pytest

from model.families import blind9
from model.families.blind9 import KINDS, LABELS, Stream, make_stream, make_streams
from tests.generation_cost import assert_cheap

NEG = [LABELS.index(x) for x in ("angry", "disgust", "fear", "sad")]
SEED = 20240917
N = 60  # streams per change kind (none: fewer, they are long)


@pytest.fixture(scope="module")
def streams() -> dict[str, list[Stream]]:
    return {k: make_streams(SEED, k, 25 if k == "none" else N) for k in KINDS}


def neg(s: Stream) -> np.ndarray:
    return np.isin(s.true_emotion, NEG)


def last_change(s: Stream) -> int:
    return max(x for x in (s.start, s.end, s.start2) if x is not None)


def tv(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance between the empirical emotion histograms of two label arrays."""
    ha = np.bincount(a, minlength=7) / len(a)
    hb = np.bincount(b, minlength=7) / len(b)
    return float(0.5 * np.abs(ha - hb).sum())


def test_constants() -> None:
    assert blind9.NAME == "blind9"
    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
                     "episode", "two_changes", "placebo")


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtypes_and_probabilities(streams: dict[str, list[Stream]], kind: str) -> None:
    for s in streams[kind]:
        t = len(s.gaps)
        assert s.kind == kind
        assert s.probs.shape == (t, 7) and s.probs.dtype == np.float32
        assert s.gaps.shape == (t,) and s.gaps.dtype == np.float64
        assert s.face.shape == (t,) and s.face.dtype == np.bool_
        assert s.true_emotion.shape == (t,) and np.issubdtype(s.true_emotion.dtype, np.integer)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() < 7
        assert np.all(np.isfinite(s.probs)) and s.probs.min() >= 0.0
        np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert np.all(np.isfinite(s.gaps)) and s.gaps[0] == 0.0 and s.gaps.min() >= 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_change_positions(streams: dict[str, list[Stream]], kind: str) -> None:
    for s in streams[kind]:
        t = len(s.gaps)
        if kind == "none":
            assert 1500 <= t <= 3000
            assert s.start is None and s.end is None and s.start2 is None
            continue
        assert 300 <= t <= 900
        assert s.start is not None and 20 <= s.start <= 300
        assert t - last_change(s) >= 150
        if kind in ("transient", "episode"):
            assert s.end is not None and s.start2 is None
            lo, hi = (1, 3) if kind == "transient" else (10, 80)
            assert lo <= s.end - s.start <= hi
        elif kind == "two_changes":
            assert s.end is None and s.start2 is not None
            assert 100 <= s.start2 - s.start <= 400
        else:
            assert s.end is None and s.start2 is None


def test_placebo_start_drawn_like_change_starts(streams: dict[str, list[Stream]]) -> None:
    placebo = [s.start for s in streams["placebo"]]
    change = [s.start for k in ("abrupt_pos_neg", "abrupt_neg_pos", "small_shift") for s in streams[k]]
    assert abs(np.median(placebo) - np.median(change)) < 90


def test_deterministic_per_seed_and_prefix_stable() -> None:
    for kind in ("none", "two_changes"):
        a, b = make_streams(11, kind, 3), make_streams(11, kind, 3)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.probs, y.probs)
            np.testing.assert_array_equal(x.gaps, y.gaps)
            np.testing.assert_array_equal(x.face, y.face)
            np.testing.assert_array_equal(x.true_emotion, y.true_emotion)
            assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
        c = make_streams(12, kind, 1)[0]
        assert len(c.gaps) != len(a[0].gaps) or not np.array_equal(c.probs, a[0].probs)
        np.testing.assert_array_equal(make_streams(11, kind, 1)[0].probs, a[0].probs)


def test_make_stream_uses_given_rng() -> None:
    a = make_stream(np.random.default_rng(5), "episode")
    b = make_stream(np.random.default_rng(5), "episode")
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.start == b.start and a.end == b.end


def test_kinds_do_not_share_draws() -> None:
    firsts = {k: make_streams(3, k, 1)[0] for k in KINDS}
    for i, a in enumerate(KINDS):
        for b in KINDS[i + 1:]:
            x, y = firsts[a], firsts[b]
            assert not np.allclose(x.gaps[1:50], y.gaps[1:50])
            assert not np.allclose(x.probs[:50], y.probs[:50])


def test_unknown_kind_raises() -> None:
    with pytest.raises(ValueError):
        make_stream(np.random.default_rng(0), "sudden")
    with pytest.raises(ValueError):
        make_streams(0, "sudden", 2)


def mean_shift(ss: list[Stream]) -> float:
    """Average change of the true negative share from before start to after it (up to end/start2)."""
    return float(np.mean([neg(s)[s.start:s.end or s.start2].mean() - neg(s)[:s.start].mean() for s in ss]))


def test_abrupt_changes_are_real(streams: dict[str, list[Stream]]) -> None:
    assert mean_shift(streams["abrupt_pos_neg"]) > 0.2
    assert mean_shift(streams["abrupt_neg_pos"]) < -0.2
    assert np.mean([neg(s)[: s.start].mean() < 0.5 for s in streams["abrupt_pos_neg"]]) > 0.85
    assert np.mean([neg(s)[: s.start].mean() > 0.3 for s in streams["abrupt_neg_pos"]]) > 0.85


def test_small_shift_is_small_and_mostly_up(streams: dict[str, list[Stream]]) -> None:
    d = np.array([neg(s)[s.start:].mean() - neg(s)[: s.start].mean() for s in streams["small_shift"]])
    assert 0.05 < np.mean(np.abs(d)) < 0.35
    assert np.mean(d > 0) > 0.55


def test_transient_is_short_and_different(streams: dict[str, list[Stream]]) -> None:
    ss = streams["transient"]
    inside = np.concatenate([neg(s)[s.start:s.end] for s in ss]).mean()
    before = np.mean([neg(s)[: s.start].mean() for s in ss])
    after = np.mean([neg(s)[s.end:].mean() for s in ss])
    assert inside > before + 0.25
    assert abs(after - before) < 0.07


def test_episode_differs_then_returns(streams: dict[str, list[Stream]]) -> None:
    ss = streams["episode"]
    assert np.mean([abs(neg(s)[s.start:s.end].mean() - neg(s)[: s.start].mean()) for s in ss]) > 0.2
    before = np.mean([neg(s)[: s.start].mean() for s in ss])
    after = np.mean([neg(s)[s.end:].mean() for s in ss])
    assert abs(after - before) < 0.07


def test_gradual_and_two_changes_move_the_pattern(streams: dict[str, list[Stream]]) -> None:
    def dist(ss: list[Stream]) -> float:
        return float(np.mean([tv(s.true_emotion[: s.start], s.true_emotion[-150:]) for s in ss]))

    placebo = dist(streams["placebo"])
    assert dist(streams["gradual"]) > placebo + 0.08
    assert float(np.mean([tv(s.true_emotion[: s.start], s.true_emotion[s.start:s.start2])
                          for s in streams["two_changes"]])) > placebo + 0.1
    # the second change really changes something too
    assert float(np.mean([tv(s.true_emotion[s.start:s.start2], s.true_emotion[s.start2:])
                          for s in streams["two_changes"]])) > placebo + 0.08


def test_placebo_and_none_have_no_real_change(streams: dict[str, list[Stream]]) -> None:
    ss = streams["placebo"]
    assert all(s.end is None and s.start2 is None for s in ss)
    d = [neg(s)[s.start:].mean() - neg(s)[: s.start].mean() for s in ss]
    assert abs(np.mean(d)) < 0.05
    for s in streams["none"]:
        t = len(s.true_emotion)
        halves = neg(s)[: t // 2].mean(), neg(s)[t // 2:].mean()
        assert abs(halves[0] - halves[1]) < 0.3


def test_classifier_correlates_imperfectly(streams: dict[str, list[Stream]]) -> None:
    accs, gaps_neg = [], []
    for s in streams["placebo"] + streams["none"]:
        f = s.face
        if f.sum() < 30:
            continue
        pred = s.probs[f].argmax(axis=1)
        accs.append(float(np.mean(pred == s.true_emotion[f])))
        p_neg = s.probs[f][:, NEG].sum(axis=1)
        is_neg = neg(s)[f]
        if 5 <= is_neg.sum() <= len(is_neg) - 5:
            gaps_neg.append(p_neg[is_neg].mean() - p_neg[~is_neg].mean())
    assert len(accs) > 40
    assert 0.3 < np.mean(accs) < 0.8
    assert max(accs) < 0.95
    assert np.mean(gaps_neg) > 0.1
    # no-face posts carry (almost) no information: their argmax agrees with the truth far less often
    nf = [np.mean(s.probs[~s.face].argmax(axis=1) == s.true_emotion[~s.face])
          for s in streams["placebo"] if (~s.face).sum() > 30]
    assert np.mean(nf) < np.mean(accs) - 0.1


def test_users_differ(streams: dict[str, list[Stream]]) -> None:
    ss = streams["placebo"] + streams["none"]
    face = np.array([s.face.mean() for s in ss])
    assert face.min() < 0.15 and face.max() > 0.6
    med_gap = np.array([np.median(s.gaps[1:]) for s in ss])
    assert med_gap.max() / med_gap.min() > 100
    share = np.array([neg(s).mean() for s in ss])
    assert share.min() < 0.15 and share.max() > 0.55
    # heavy tails and bursts: long silences and near-simultaneous posts
    assert np.mean([s.gaps.max() > 20 * np.median(s.gaps[1:]) for s in ss]) > 0.8
    assert np.mean([np.mean(s.gaps[1:] < 120) > 0.01 for s in ss]) > 0.5


def test_generation_is_fast() -> None:
    assert len(make_streams(1, "two_changes", 30)) == 30
    assert_cheap(make_streams)  # against a yardstick timed in the same run
