"""Contract of the third blind family: API, kinds' invariants, realism bounds, determinism."""
from __future__ import annotations


import numpy as np
import pytest

from model.families import blind3
from tests.generation_cost import assert_cheap

CHANGE_KINDS = [k for k in blind3.KINDS if k not in ("none", "placebo")]
NEG = [0, 1, 2, 4]   # angry, disgust, fear, sad


def _last_change(s: blind3.Stream) -> int:
    if s.kind == "two_changes":
        return s.start2
    if s.end is not None:
        return s.end
    return s.start


@pytest.mark.parametrize("kind", blind3.KINDS)
def test_shapes_dtypes_and_rows(kind: str) -> None:
    for s in blind3.make_streams(11, kind, 6):
        T = len(s.gaps)
        assert s.kind == kind
        assert s.probs.shape == (T, 7) and s.probs.dtype == np.float32
        assert np.all(s.probs >= 0) and np.allclose(s.probs.sum(1), 1.0, atol=1e-5)
        assert s.gaps.shape == (T,) and s.gaps.dtype == np.float64
        assert s.gaps[0] == 0.0 and np.all(s.gaps[1:] > 0)
        assert s.face.shape == (T,) and s.face.dtype == bool
        assert s.true_emotion.shape == (T,) and np.issubdtype(s.true_emotion.dtype, np.integer)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() < len(blind3.LABELS)


def test_same_seed_same_streams_other_seed_other_streams() -> None:
    for kind in blind3.KINDS:
        a, b = blind3.make_streams(3, kind, 3), blind3.make_streams(3, kind, 3)
        c = blind3.make_streams(4, kind, 3)
        for x, y in zip(a, b):
            assert np.array_equal(x.probs, y.probs) and np.array_equal(x.gaps, y.gaps)
            assert np.array_equal(x.face, y.face) and np.array_equal(x.true_emotion, y.true_emotion)
            assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
        assert not np.array_equal(a[0].probs[:30], c[0].probs[:30])


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        blind3.make_stream(np.random.default_rng(0), "sudden")


@pytest.mark.parametrize("kind", blind3.KINDS)
def test_kind_invariants(kind: str) -> None:
    for s in blind3.make_streams(21, kind, 40):
        T = len(s.gaps)
        if kind == "none":
            assert 1500 <= T <= 3000 and (s.start, s.end, s.start2) == (None, None, None)
            continue
        assert 30 <= s.start <= 250
        if kind == "placebo":
            assert s.end is None and s.start2 is None
            continue
        assert T - _last_change(s) >= 150
        if kind == "transient":
            assert s.end - s.start in (1, 2)
        elif kind == "episode":
            assert 12 <= s.end - s.start <= 60
        elif kind == "two_changes":
            assert 150 <= s.start2 - s.start <= 300 and s.end is None
        else:
            assert s.end is None and s.start2 is None


def test_classifier_accuracy_on_faces_is_realistic() -> None:
    accs = []
    for kind in blind3.KINDS:
        for s in blind3.make_streams(5, kind, 15):
            f = s.face
            if f.sum() >= 20:
                accs.append(float((s.probs[f].argmax(1) == s.true_emotion[f]).mean()))
    assert 0.4 <= float(np.mean(accs)) <= 0.8
    assert min(accs) < 0.4 < 0.6 < max(accs)      # heterogeneous users, not one calibrated clone


def _neg_share_change(s: blind3.Stream) -> float:
    neg = s.probs[:, NEG].sum(1)
    before, after = s.face[:s.start], s.face[s.start:]
    return float(neg[s.start:][after].mean() - neg[:s.start][before].mean())


def test_negative_share_rises_after_pos_neg_and_falls_after_neg_pos() -> None:
    up = [_neg_share_change(s) for s in blind3.make_streams(8, "abrupt_pos_neg", 80)]
    down = [_neg_share_change(s) for s in blind3.make_streams(8, "abrupt_neg_pos", 80)]
    plac = [_neg_share_change(s) for s in blind3.make_streams(8, "placebo", 80)]
    assert np.nanmean(up) > 0.05 and np.nanmean(down) < -0.05
    assert abs(np.nanmean(plac)) < 0.03
    assert np.mean(np.array(up) > 0) > 0.8


def test_real_emotions_follow_the_kind() -> None:
    def neg_rate(e: np.ndarray) -> float:
        return float(np.isin(e, NEG).mean())
    for s in blind3.make_streams(9, "transient", 30):
        assert np.all(np.isin(s.true_emotion[s.start:s.end], NEG))
    ep = blind3.make_streams(9, "episode", 40)
    inside = np.mean([neg_rate(s.true_emotion[s.start:s.end]) for s in ep])
    around = np.mean([neg_rate(np.r_[s.true_emotion[:s.start], s.true_emotion[s.end:]]) for s in ep])
    assert inside > around + 0.15
    small = blind3.make_streams(9, "small_shift", 60)
    d = [np.abs(np.bincount(s.true_emotion[s.start:], minlength=7) / (len(s.gaps) - s.start)
                - np.bincount(s.true_emotion[:s.start], minlength=7) / s.start).sum() / 2 for s in small]
    big = blind3.make_streams(9, "abrupt_pos_neg", 60)
    dbig = [np.abs(np.bincount(s.true_emotion[s.start:], minlength=7) / (len(s.gaps) - s.start)
                   - np.bincount(s.true_emotion[:s.start], minlength=7) / s.start).sum() / 2 for s in big]
    assert 0.05 < np.mean(d) < np.mean(dbig)


def test_posting_rhythm_is_heterogeneous_with_sessions_and_silences() -> None:
    streams = blind3.make_streams(13, "none", 40)
    med = np.array([np.median(s.gaps[1:]) for s in streams])
    assert med.min() < 3600 and med.max() > 86400          # dozens a day ... a few a month
    assert np.mean(np.concatenate([s.gaps[1:] < 600 for s in streams])) > 0.05   # sessions
    assert np.mean([np.any(s.gaps > 5 * 86400) for s in streams]) > 0.5
    faces = np.array([s.face.mean() for s in streams])
    assert faces.min() < 0.3 and faces.max() > 0.8


def test_two_hundred_long_streams_are_cheap() -> None:
    assert_cheap(blind3.make_streams, seed=17)


def test_some_accounts_repost_the_same_image_minutes_later() -> None:
    streams = blind3.make_streams(19, "none", 30)
    reposted = [np.all(s.probs[1:] == s.probs[:-1], axis=1) for s in streams]
    assert sum(r.any() for r in reposted) >= 3 and sum(not r.any() for r in reposted) >= 3
    for s, r in zip(streams, reposted):
        assert np.all(s.gaps[1:][r] <= 300)
