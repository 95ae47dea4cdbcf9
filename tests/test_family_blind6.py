"""The blind6 stream family: determinism, shapes, each kind's invariants, a plausible classifier,
a visible change where there is one, and cheap generation."""

from __future__ import annotations

import numpy as np
import pytest

from model.families import blind6
from tests.generation_cost import assert_cheap

NEG = [blind6.LABELS.index(x) for x in ("angry", "disgust", "fear", "sad")]
CHANGE_KINDS = [k for k in blind6.KINDS if k not in ("none", "placebo")]


def _neg_share(probs: np.ndarray) -> float:
    return float(probs[:, NEG].sum(1).mean())


def test_api_constants() -> None:
    assert blind6.KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift",
                            "transient", "episode", "two_changes", "placebo")
    assert blind6.LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.mark.parametrize("kind", blind6.KINDS)
def test_same_seed_same_streams_other_seed_other_streams(kind: str) -> None:
    a = blind6.make_streams(11, kind, 4)
    b = blind6.make_streams(11, kind, 4)
    c = blind6.make_streams(12, kind, 4)
    for x, y in zip(a, b):
        assert (x.kind, x.start, x.end, x.start2) == (y.kind, y.start, y.end, y.start2)
        np.testing.assert_array_equal(x.probs, y.probs)
        np.testing.assert_array_equal(x.gaps, y.gaps)
        np.testing.assert_array_equal(x.face, y.face)
        np.testing.assert_array_equal(x.true_emotion, y.true_emotion)
    assert any(len(x.probs) != len(z.probs) or not np.array_equal(x.probs, z.probs) for x, z in zip(a, c))


@pytest.mark.parametrize("kind", blind6.KINDS)
def test_shapes_dtypes_and_rows(kind: str) -> None:
    for s in blind6.make_streams(3, kind, 6):
        T = len(s.gaps)
        assert s.kind == kind
        assert s.probs.shape == (T, 7) and s.probs.dtype == np.float32
        assert s.gaps.shape == (T,) and s.gaps.dtype == np.float64
        assert s.face.shape == (T,) and s.face.dtype == np.bool_
        assert s.true_emotion.shape == (T,) and np.issubdtype(s.true_emotion.dtype, np.integer)
        assert np.all(s.probs >= 0) and np.allclose(s.probs.sum(1), 1.0, atol=1e-5)
        assert s.gaps[0] == 0.0 and np.all(s.gaps >= 0) and np.all(np.isfinite(s.gaps))
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        assert 0 < s.face.mean() < 1


@pytest.mark.parametrize("kind", blind6.KINDS)
def test_kind_invariants(kind: str) -> None:
    for s in blind6.make_streams(5, kind, 30):
        T = len(s.gaps)
        if kind == "none":
            assert 1500 <= T <= 3000
            assert (s.start, s.end, s.start2) == (None, None, None)
            continue
        assert s.start is not None and 30 <= s.start <= 250
        if kind == "placebo":
            assert s.end is None and s.start2 is None
            continue
        if kind == "transient":
            assert s.end is not None and 1 <= s.end - s.start <= 2
        elif kind == "episode":
            assert s.end is not None and 12 <= s.end - s.start <= 60
        else:
            assert s.end is None
        if kind == "two_changes":
            assert s.start2 is not None and 150 <= s.start2 - s.start <= 300
            last = s.start2
        else:
            assert s.start2 is None
            last = s.end if s.end is not None else s.start
        assert T - last >= 150


def test_gradual_leaves_150_posts_after_the_ramp() -> None:
    # the ramp ends at most 120 posts after start; 150 more must follow
    for s in blind6.make_streams(6, "gradual", 30):
        assert len(s.gaps) - s.start >= 150 + 10


@pytest.mark.parametrize("kind", blind6.KINDS)
def test_classifier_accuracy_on_faces_is_plausible(kind: str) -> None:
    accs = []
    for s in blind6.make_streams(21, kind, 40):
        f = s.face
        accs.append(float((s.probs[f].argmax(1) == s.true_emotion[f]).mean()))
    assert 0.4 <= float(np.mean(accs)) <= 0.8
    assert float(np.std(accs)) > 0.03          # users differ: cameras, light, posing


def test_negative_share_rises_after_pos_neg_and_falls_after_neg_pos() -> None:
    up = [_neg_share(s.probs[s.start:]) - _neg_share(s.probs[:s.start])
          for s in blind6.make_streams(31, "abrupt_pos_neg", 60)]
    down = [_neg_share(s.probs[s.start:]) - _neg_share(s.probs[:s.start])
            for s in blind6.make_streams(31, "abrupt_neg_pos", 60)]
    placebo = [_neg_share(s.probs[s.start:]) - _neg_share(s.probs[:s.start])
               for s in blind6.make_streams(31, "placebo", 60)]
    assert np.mean(up) > 0.05 and np.mean(down) < -0.05
    assert np.mean(up) > np.mean(placebo) + 0.05 > np.mean(down) + 0.1


def test_true_emotions_change_at_start_and_come_back_after_episodes() -> None:
    for kind in ("abrupt_pos_neg", "episode"):
        d = []
        for s in blind6.make_streams(41, kind, 40):
            stop = s.end if s.end is not None else len(s.gaps)
            neg = np.isin(s.true_emotion, NEG)
            d.append(neg[s.start:stop].mean() - neg[:s.start].mean())
            if s.end is not None:
                d[-1] -= abs(neg[s.end:].mean() - neg[:s.start].mean())
        assert np.mean(d) > 0.15, kind


def test_transient_dip_is_one_or_two_negative_own_face_posts() -> None:
    for s in blind6.make_streams(51, "transient", 30):
        dip = slice(s.start, s.end)
        assert s.face[dip].all()
        assert np.isin(s.true_emotion[dip], NEG).all()


def test_gaps_are_heterogeneous_across_users() -> None:
    per_day = [len(s.gaps) / (s.gaps.sum() / 86400.0) for s in blind6.make_streams(61, "none", 40)]
    assert max(per_day) / min(per_day) > 5
    g = np.concatenate([s.gaps[1:] for s in blind6.make_streams(61, "none", 10)])
    assert np.percentile(g, 10) < 600 and g.max() > 7 * 86400     # bursts and silences


def test_two_changes_reach_a_third_regime() -> None:
    far = []
    for s in blind6.make_streams(71, "two_changes", 40):
        def hist(a: np.ndarray) -> np.ndarray:
            return np.bincount(a, minlength=7) / len(a)
        a = hist(s.true_emotion[:s.start])
        b = hist(s.true_emotion[s.start:s.start2])
        c = hist(s.true_emotion[s.start2:])
        far.append(min(np.abs(c - a).sum(), np.abs(c - b).sum()) / 2)
    assert np.median(far) > 0.12


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError):
        blind6.make_stream(np.random.default_rng(0), "sudden")


def test_generation_is_cheap() -> None:
    assert_cheap(blind6.make_streams)
