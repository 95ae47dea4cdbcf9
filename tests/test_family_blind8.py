"""Contract tests for the blind8 family of simulated user timelines."""

from __future__ import annotations

import time

import numpy as np
import pytest

from model.families import blind8 as fam
from model.families.blind8 import KINDS, LABELS, Stream, make_stream, make_streams

NEG = [0, 1, 2, 4]
CHANGE_KINDS = [k for k in KINDS if k != "none"]


@pytest.fixture(scope="module")
def many() -> dict[str, list[Stream]]:
    return {k: make_streams(11, k, 40 if k != "none" else 20) for k in KINDS}


def _neg_true(s: Stream, a: int, b: int | None = None) -> float:
    return float(np.isin(s.true_emotion[a:b], NEG).mean())


def _neg_clf(s: Stream, a: int, b: int | None = None) -> float:
    p = s.probs[a:b][s.face[a:b]]
    if len(p) == 0:  # a rarely-selfie user may show no face in a short segment
        return float("nan")
    return float(p[:, NEG].sum(axis=1).mean())


def test_constants() -> None:
    assert fam.NAME == "blind8"
    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert KINDS == (
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


def test_unknown_kind_rejected() -> None:
    with pytest.raises(ValueError):
        make_stream(np.random.default_rng(0), "bogus")


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_per_seed(kind: str) -> None:
    a = make_streams(5, kind, 3)
    b = make_streams(5, kind, 3)
    c = make_streams(6, kind, 3)
    for x, y in zip(a, b):
        assert np.array_equal(x.probs, y.probs)
        assert np.array_equal(x.gaps, y.gaps)
        assert np.array_equal(x.face, y.face)
        assert np.array_equal(x.true_emotion, y.true_emotion)
        assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
    assert any(
        x.probs.shape != z.probs.shape or not np.array_equal(x.probs, z.probs)
        for x, z in zip(a, c)
    )


def test_make_stream_uses_generator() -> None:
    s1 = make_stream(np.random.default_rng(3), "episode")
    s2 = make_stream(np.random.default_rng(3), "episode")
    assert np.array_equal(s1.probs, s2.probs) and s1.start == s2.start


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtypes_rows(kind: str, many: dict[str, list[Stream]]) -> None:
    for s in many[kind]:
        assert isinstance(s, Stream) and s.kind == kind
        T = s.probs.shape[0]
        assert s.probs.shape == (T, 7) and s.probs.dtype == np.float32
        assert np.all(s.probs >= 0)
        assert np.allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
        assert s.gaps.shape == (T,) and s.gaps.dtype == np.float64
        assert s.gaps[0] == 0 and np.all(np.isfinite(s.gaps)) and np.all(s.gaps >= 0)
        assert s.face.shape == (T,) and s.face.dtype == np.bool_
        assert s.true_emotion.shape == (T,)
        assert np.issubdtype(s.true_emotion.dtype, np.integer)
        assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
        assert 0.0 < s.face.mean() < 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_positions(kind: str, many: dict[str, list[Stream]]) -> None:
    for s in many[kind]:
        T = len(s.gaps)
        if kind == "none":
            assert s.start is None and s.end is None and s.start2 is None
            assert 1500 <= T <= 3000
            continue
        assert s.start is not None and 30 <= s.start <= 250
        last = s.start
        if kind in ("transient", "episode"):
            assert s.end is not None
            last = s.end
        else:
            assert s.end is None
        if kind == "two_changes":
            assert s.start2 is not None and 150 <= s.start2 - s.start <= 300
            last = s.start2
        else:
            assert s.start2 is None
        assert T - last >= 150
        if kind == "transient":
            assert s.end is not None and 1 <= s.end - s.start <= 2
            assert np.isin(s.true_emotion[s.start : s.end], NEG).all()
        if kind == "episode":
            assert s.end is not None and 12 <= s.end - s.start <= 60


def test_placebo_start_distribution_matches_change_streams() -> None:
    p = np.array([s.start for s in make_streams(2, "placebo", 300)])
    a = np.array([s.start for s in make_streams(2, "abrupt_pos_neg", 300)])
    assert p.min() >= 30 and p.max() <= 250
    assert abs(p.mean() - a.mean()) < 20


def test_accuracy_range(many: dict[str, list[Stream]]) -> None:
    accs = []
    for k in KINDS:
        for s in many[k]:
            f = s.face
            accs.append(float((s.probs[f].argmax(axis=1) == s.true_emotion[f]).mean()))
    acc = np.array(accs)
    assert 0.4 <= acc.mean() <= 0.8
    assert acc.std() > 0.03  # per-user classifier quality differs


def test_abrupt_pos_neg_moves_negative(many: dict[str, list[Stream]]) -> None:
    dt, dc = [], []
    for s in many["abrupt_pos_neg"]:
        assert s.start is not None
        dt.append(_neg_true(s, s.start) - _neg_true(s, 0, s.start))
        dc.append(_neg_clf(s, s.start) - _neg_clf(s, 0, s.start))
    assert np.mean(dt) > 0.25
    assert np.nanmean(dc) > 0.03


def test_abrupt_neg_pos_moves_positive(many: dict[str, list[Stream]]) -> None:
    dt, dc = [], []
    for s in many["abrupt_neg_pos"]:
        assert s.start is not None
        dt.append(_neg_true(s, s.start) - _neg_true(s, 0, s.start))
        dc.append(_neg_clf(s, s.start) - _neg_clf(s, 0, s.start))
    assert np.mean(dt) < -0.25
    assert np.nanmean(dc) < -0.03


def test_small_shift_size(many: dict[str, list[Stream]]) -> None:
    d = [
        abs(_neg_true(s, s.start) - _neg_true(s, 0, s.start))
        for s in many["small_shift"]
        if s.start
    ]
    assert 0.07 < np.mean(d) < 0.35


def test_gradual_and_two_changes_change(many: dict[str, list[Stream]]) -> None:
    g = [
        abs(_neg_true(s, len(s.gaps) - 100) - _neg_true(s, 0, s.start))
        for s in many["gradual"]
    ]
    assert np.mean(g) > 0.2
    d1, d2 = [], []
    for s in many["two_changes"]:
        assert s.start is not None and s.start2 is not None
        p0 = np.bincount(s.true_emotion[: s.start], minlength=7) / s.start
        p1 = np.bincount(s.true_emotion[s.start : s.start2], minlength=7) / (
            s.start2 - s.start
        )
        p2 = np.bincount(s.true_emotion[s.start2 :], minlength=7) / (
            len(s.gaps) - s.start2
        )
        d1.append(0.5 * np.abs(p1 - p0).sum())
        d2.append(0.5 * np.abs(p2 - p1).sum())
    assert np.mean(d1) > 0.2 and np.mean(d2) > 0.2


def test_episode_recovers(many: dict[str, list[Stream]]) -> None:
    pre, during, post = [], [], []
    for s in many["episode"]:
        assert s.start is not None and s.end is not None
        pre.append(_neg_true(s, 0, s.start))
        during.append(_neg_true(s, s.start, s.end))
        post.append(_neg_true(s, s.end))
    assert np.mean(during) - np.mean(pre) > 0.25
    assert abs(np.mean(post) - np.mean(pre)) < 0.08


def test_no_change_kinds_stable(many: dict[str, list[Stream]]) -> None:
    for k in ("placebo", "transient"):
        d = [
            _neg_true(s, (s.end or s.start)) - _neg_true(s, 0, s.start) for s in many[k]
        ]
        assert abs(np.mean(d)) < 0.08


def test_variety_between_users(many: dict[str, list[Stream]]) -> None:
    streams = many["none"] + many["placebo"]
    face_rates = np.array([s.face.mean() for s in streams])
    assert face_rates.std() > 0.15 and face_rates.max() - face_rates.min() > 0.5
    neg = np.array([_neg_true(s, 0) for s in streams])
    assert neg.max() - neg.min() > 0.3
    happy = np.array([np.mean(s.true_emotion == 3) for s in streams])
    assert happy.max() - happy.min() > 0.3
    med_gap = np.array([np.median(s.gaps[1:]) for s in streams])
    assert med_gap.max() / med_gap.min() > 3


def test_gaps_heavy_tailed(many: dict[str, list[Stream]]) -> None:
    for s in many["none"]:
        g = s.gaps[1:]
        assert np.quantile(g, 0.99) > 8 * np.median(g)
    allg = np.concatenate([s.gaps[1:] for s in many["none"]])
    assert np.quantile(allg, 0.1) < 600 and allg.max() > 14 * 86400


def test_speed_ratio() -> None:
    make_streams(0, "none", 3)  # warm up
    t0 = time.perf_counter()
    make_streams(1, "none", 20)
    t20 = time.perf_counter() - t0
    t0 = time.perf_counter()
    make_streams(2, "none", 200)
    t200 = time.perf_counter() - t0
    assert t200 < 25 * t20
