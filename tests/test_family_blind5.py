"""Contract tests of the blind family 5 generator (model/families/blind5.py)."""

from __future__ import annotations

import numpy as np
import pytest

from model.families import blind5
from tests.generation_cost import assert_cheap

NEGATIVE = [blind5.LABELS.index(x) for x in ("angry", "disgust", "fear", "sad")]
CHANGES = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode", "two_changes")


def _same(a: blind5.Stream, b: blind5.Stream) -> bool:
    return (a.kind == b.kind and (a.start, a.end, a.start2) == (b.start, b.end, b.start2)
            and np.array_equal(a.probs, b.probs) and np.array_equal(a.gaps, b.gaps)
            and np.array_equal(a.face, b.face) and np.array_equal(a.true_emotion, b.true_emotion))


def test_api_constants() -> None:
    assert blind5.LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert blind5.KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift",
                            "transient", "episode", "two_changes", "placebo")


@pytest.mark.parametrize("kind", blind5.KINDS)
def test_deterministic_for_a_seed(kind: str) -> None:
    a = blind5.make_streams(7, kind, 3)
    b = blind5.make_streams(7, kind, 3)
    c = blind5.make_streams(8, kind, 3)
    assert all(_same(x, y) for x, y in zip(a, b))
    assert not all(_same(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("kind", blind5.KINDS)
def test_shapes_dtypes_and_rows(kind: str) -> None:
    for s in blind5.make_streams(1, kind, 12):
        T = len(s.gaps)
        assert s.kind == kind
        assert s.probs.shape == (T, 7) and s.probs.dtype == np.float32
        assert np.all(s.probs >= 0) and np.allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps.shape == (T,) and s.gaps.dtype == np.float64
        assert s.gaps[0] == 0.0 and np.all(s.gaps[1:] > 0) and np.all(np.isfinite(s.gaps))
        assert s.face.shape == (T,) and s.face.dtype == bool
        assert s.true_emotion.shape == (T,) and np.issubdtype(s.true_emotion.dtype, np.integer)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() < 7


def test_kind_invariants() -> None:
    for kind in blind5.KINDS:
        for s in blind5.make_streams(2, kind, 40):
            T = len(s.gaps)
            if kind == "none":
                assert 1500 <= T <= 3000 and (s.start, s.end, s.start2) == (None, None, None)
                continue
            assert 30 <= s.start <= 250
            assert (s.start2 is not None) == (kind == "two_changes")
            if kind in ("transient", "episode"):
                lo, hi = (1, 2) if kind == "transient" else (12, 60)
                assert lo <= s.end - s.start <= hi
                assert T - s.end >= 150
            else:
                assert s.end is None
            if kind == "two_changes":
                assert 150 <= s.start2 - s.start <= 300 and T - s.start2 >= 150
            elif kind != "placebo":
                assert T - s.start >= 150


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        blind5.make_streams(0, "sudden", 1)


def test_classifier_accuracy_on_face_posts_is_realistic() -> None:
    accs = []
    for kind in blind5.KINDS:
        for s in blind5.make_streams(3, kind, 30):
            if s.face.sum() >= 10:
                accs.append(np.mean(s.probs[s.face].argmax(axis=1) == s.true_emotion[s.face]))
    assert 0.4 <= np.mean(accs) <= 0.8
    # users differ: some are read well, some badly
    assert np.quantile(accs, 0.9) - np.quantile(accs, 0.1) > 0.1


def _neg_change(streams: list[blind5.Stream], upto: str = "end") -> np.ndarray:
    out = []
    for s in streams:
        stop = {"end": s.end, "start2": s.start2}[upto] or len(s.gaps)
        pre, post = s.probs[: s.start], s.probs[s.start : stop]
        out.append(post[:, NEGATIVE].sum(axis=1).mean() - pre[:, NEGATIVE].sum(axis=1).mean())
    return np.array(out)


def test_negative_share_rises_after_an_abrupt_pos_neg_start() -> None:
    streams = blind5.make_streams(11, "abrupt_pos_neg", 150)
    shift = _neg_change(streams)
    assert shift.mean() > 0.05 and np.mean(shift > 0) > 0.8
    true = [np.isin(s.true_emotion[s.start :], NEGATIVE).mean() - np.isin(s.true_emotion[: s.start], NEGATIVE).mean()
            for s in streams]
    assert np.mean(true) > 0.25


def test_negative_share_falls_after_an_abrupt_neg_pos_start() -> None:
    shift = _neg_change(blind5.make_streams(12, "abrupt_neg_pos", 150))
    assert shift.mean() < -0.05 and np.mean(shift < 0) > 0.8


def test_placebo_start_marks_nothing() -> None:
    shift = _neg_change(blind5.make_streams(13, "placebo", 150))
    assert abs(shift.mean()) < 0.02


def test_transient_dip_is_negative_and_brief() -> None:
    streams = blind5.make_streams(14, "transient", 100)
    dip = np.concatenate([s.true_emotion[s.start : s.end] for s in streams])
    assert np.isin(dip, NEGATIVE).mean() > 0.6
    assert all(s.face[s.start : s.end].all() for s in streams)


def test_sadder_regimes_post_less() -> None:
    # sadness shows as fewer posts: longer median gaps after a change to a negative regime
    ratios = [np.median(s.gaps[s.start + 1 :]) / np.median(s.gaps[1 : s.start])
              for s in blind5.make_streams(15, "abrupt_pos_neg", 150)]
    assert np.median(ratios) > 1.0


def test_population_is_heterogeneous() -> None:
    streams = blind5.make_streams(16, "none", 60)
    rates = np.array([len(s.gaps) / s.gaps.sum() * 86400 for s in streams])   # posts per day
    faces = np.array([s.face.mean() for s in streams])
    flat = np.array([s.probs.max(axis=1).mean() for s in streams])
    assert rates.max() / rates.min() > 10
    assert faces.min() < 0.4 and faces.max() > 0.75
    assert flat.min() < 0.45 and flat.max() > 0.75
    # bursts and silences: gaps of a few minutes and of weeks in the same population
    gaps = np.concatenate([s.gaps[1:] for s in streams])
    assert np.mean(gaps < 600) > 0.05 and np.mean(gaps > 14 * 86400) > 0.0005


def test_two_hundred_none_streams_generate_quickly() -> None:
    # speed judged against a yardstick timed in the same run, as for the other blind families
    assert_cheap(blind5.make_streams, seed=17)
