"""The held-out family ``blind15`` (teens and young adults on a stories app): the stream contract, the
designed changes as they show in the TRUE emotions, an imperfect classifier, withdrawal into faceless
posts when low, and cheap vectorised generation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.generation_cost import assert_cheap

_PATH = Path(__file__).resolve().parents[1] / "model" / "families" / "blind15.py"
_spec = importlib.util.spec_from_file_location("blind15_under_test", _PATH)
fam = importlib.util.module_from_spec(_spec)
sys.modules["blind15_under_test"] = fam
_spec.loader.exec_module(fam)

NEG = np.array([0, 1, 2, 4])
CHANGE_KINDS = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode",
                "two_changes")
N_CHANGE = 50


@pytest.fixture(scope="module")
def streams() -> dict[str, list]:
    out = {kind: fam.make_streams(11, kind, N_CHANGE) for kind in fam.KINDS if kind != "none"}
    out["none"] = fam.make_streams(11, "none", 12)
    return out


def neg_share(s, a: int, b: int) -> float:
    return float(np.isin(s.true_emotion[max(a, 0):b], NEG).mean())


def test_names_and_kinds():
    assert fam.NAME == "blind15"
    assert fam.KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
                         "episode", "two_changes", "placebo")
    with pytest.raises(ValueError):
        fam.make_streams(1, "nope", 1)


def test_contract(streams):
    for kind, group in streams.items():
        for s in group:
            n = len(s.probs)
            assert s.kind == kind
            assert s.probs.dtype == np.float32 and s.probs.shape == (n, 7)
            assert np.isfinite(s.probs).all() and (s.probs >= 0).all()
            assert np.allclose(s.probs.sum(axis=1), 1.0, atol=1e-4)
            assert s.gaps.dtype == np.float64 and s.gaps.shape == (n,)
            assert np.isfinite(s.gaps).all() and (s.gaps > 0).all()
            assert s.face.dtype == bool and s.face.shape == (n,)
            assert s.true_emotion.shape == (n,) and np.issubdtype(s.true_emotion.dtype, np.integer)
            assert s.true_emotion.min() >= 0 and s.true_emotion.max() <= 6
            assert isinstance(s.meta, dict)
            for pos in (s.start, s.end, s.start2):
                assert pos is None or isinstance(pos, int)


def test_make_stream_single():
    s = fam.make_stream(np.random.default_rng(5), "episode")
    assert s.kind == "episode" and s.start is not None and s.end is not None


def test_determinism():
    for kind in ("none", "two_changes"):
        a, b = fam.make_streams(7, kind, 3), fam.make_streams(7, kind, 3)
        for x, y in zip(a, b):
            assert np.array_equal(x.probs, y.probs) and np.array_equal(x.gaps, y.gaps)
            assert np.array_equal(x.face, y.face) and np.array_equal(x.true_emotion, y.true_emotion)
            assert (x.start, x.end, x.start2) == (y.start, y.end, y.start2)
    other_seed = fam.make_streams(8, "placebo", 1)[0]
    placebo, abrupt = fam.make_streams(7, "placebo", 1)[0], fam.make_streams(7, "abrupt_pos_neg", 1)[0]
    assert not np.array_equal(placebo.gaps[:50], other_seed.gaps[:50])
    assert not np.array_equal(placebo.gaps[:50], abrupt.gaps[:50])


def test_lengths_and_positions(streams):
    for s in streams["none"]:
        assert 1500 <= len(s.probs) <= 2500
        assert s.start is None and s.end is None and s.start2 is None
    for kind in CHANGE_KINDS + ("placebo",):
        for s in streams[kind]:
            n = len(s.probs)
            assert 300 <= n <= 900
            assert 30 <= s.start <= 300
            last = s.start
            if kind == "transient":
                assert 1 <= s.end - s.start <= 3
                last = s.end
            elif kind == "episode":
                assert 20 <= s.end - s.start <= 110
                last = s.end
            elif kind == "two_changes":
                assert s.start2 - s.start >= 100
                last = s.start2
            elif kind == "gradual":
                assert 20 <= s.meta["ramp"] <= 200
                last = s.start + s.meta["ramp"]
            if kind not in ("transient", "episode"):
                assert s.end is None
            if kind != "two_changes":
                assert s.start2 is None
            assert n - last >= 150


def test_start_spread(streams):
    starts = np.array([s.start for kind in CHANGE_KINDS + ("placebo",) for s in streams[kind]])
    assert starts.min() < 60 and starts.max() > 270
    assert starts.std() > 55
    hist = np.histogram(starts, bins=9, range=(30, 301))[0]
    assert (hist > 0).all() and hist.max() < 0.25 * len(starts)
    placebo = np.array([s.start for s in streams["placebo"]])
    assert placebo.std() > 50


def test_abrupt_pos_neg(streams):
    diffs = np.array([neg_share(s, s.start, s.start + 150) - neg_share(s, s.start - 150, s.start)
                      for s in streams["abrupt_pos_neg"]])
    assert diffs.mean() > 0.3 and (diffs > 0.1).mean() > 0.9
    before = np.array([neg_share(s, 0, s.start) for s in streams["abrupt_pos_neg"]])
    assert before.mean() < 0.3   # a cheerful/neutral baseline


def test_abrupt_neg_pos(streams):
    diffs = np.array([neg_share(s, s.start, s.start + 150) - neg_share(s, s.start - 150, s.start)
                      for s in streams["abrupt_neg_pos"]])
    assert diffs.mean() < -0.3 and (diffs < -0.1).mean() > 0.9
    before = np.array([neg_share(s, 0, s.start) for s in streams["abrupt_neg_pos"]])
    assert before.mean() > 0.45   # a gloomy baseline


def test_gradual(streams):
    rises, mids = [], []
    for s in streams["gradual"]:
        ramp = s.meta["ramp"]
        pre = neg_share(s, s.start - 150, s.start)
        rises.append(neg_share(s, s.start + ramp, s.start + ramp + 150) - pre)
        design = s.meta["s_design"]
        assert design[s.start - 1] == pytest.approx(s.meta["shares"][0])
        assert design[s.start + ramp] == pytest.approx(s.meta["shares"][1])
        mid = design[s.start + ramp // 2]
        mids.append(s.meta["shares"][0] < mid < s.meta["shares"][1])
        assert np.all(np.diff(design) >= -1e-12)
    assert np.mean(rises) > 0.2 and np.mean(mids) > 0.95


def test_small_shift(streams):
    designed, realised = [], []
    for s in streams["small_shift"]:
        designed.append(s.meta["shares"][1] - s.meta["shares"][0])
        realised.append(neg_share(s, s.start, s.start + 150) - neg_share(s, s.start - 150, s.start))
    designed, realised = np.array(designed), np.array(realised)
    assert (np.abs(designed) >= 0.1 - 1e-9).all() and (np.abs(designed) <= 0.3 + 1e-9).all()
    assert (designed > 0).any() and (designed < 0).any()
    assert 0.1 <= np.median(np.abs(realised)) <= 0.3
    assert (np.sign(realised) == np.sign(designed)).mean() > 0.8


def test_transient(streams):
    inside, after, before = [], [], []
    for s in streams["transient"]:
        assert 1 <= s.end - s.start <= 3
        design = s.meta["s_design"]
        assert (design[s.start:s.end] == 1.0).all()
        assert (design[:s.start] == design[0]).all() and (design[s.end:] == design[0]).all()
        inside.extend(np.isin(s.true_emotion[s.start:s.end], NEG))
        after.append(neg_share(s, s.end, s.end + 150))
        before.append(neg_share(s, s.start - 150, s.start))
    assert np.mean(inside) > 0.9
    assert abs(np.mean(after) - np.mean(before)) < 0.05


def test_episode(streams):
    rise, back = [], []
    for s in streams["episode"]:
        pre = neg_share(s, s.start - 150, s.start)
        rise.append(neg_share(s, s.start, s.end) - pre)
        back.append(neg_share(s, s.end + 10, s.end + 160) - pre)
        design = s.meta["s_design"]
        assert (design[s.end:] == design[0]).all()
    assert np.mean(rise) > 0.25 and (np.array(rise) > 0).mean() > 0.85
    assert abs(np.mean(back)) < 0.05 and np.mean(np.abs(back)) < 0.12


def test_two_changes(streams):
    first, second, agree = [], [], []
    for s in streams["two_changes"]:
        s0, s1, s2 = s.meta["shares"]
        assert abs(s1 - s0) >= 0.2 - 1e-9 and abs(s2 - s1) >= 0.2 - 1e-9
        first.append(abs(neg_share(s, s.start, s.start + 100) - neg_share(s, s.start - 150, s.start)))
        d2 = neg_share(s, s.start2, s.start2 + 150) - neg_share(s, s.start2 - 100, s.start2)
        second.append(abs(d2))
        agree.append(np.sign(d2) == np.sign(s2 - s1))
    ups = [s.meta["shares"][2] > s.meta["shares"][1] for s in streams["two_changes"]]
    assert 0 < np.mean(ups) < 1   # the second change goes either way
    assert np.mean(first) > 0.2 and np.mean(second) > 0.2 and np.mean(agree) > 0.85


def test_no_designed_change(streams):
    for kind in ("none", "placebo"):
        for s in streams[kind]:
            assert len(s.meta["shares"]) == 1
            assert np.ptp(s.meta["s_design"]) == 0
    diffs = np.array([neg_share(s, s.start, s.start + 150) - neg_share(s, s.start - 150, s.start)
                      for s in streams["placebo"]])
    assert abs(diffs.mean()) < 0.04 and np.abs(diffs).mean() < 0.1
    mids = [neg_share(s, len(s.probs) // 2, len(s.probs)) - neg_share(s, 0, len(s.probs) // 2)
            for s in streams["none"]]
    assert np.abs(mids).mean() < 0.1


def test_harmless_changes_in_unchanged_streams(streams):
    for kind in ("none", "placebo"):
        with_nuisance = [s for s in streams[kind] if s.meta["nuisance"]]
        assert 0 < len(with_nuisance) < len(streams[kind])


def test_classifier_imperfect(streams):
    shown_acc, true_acc = [], []
    for kind in ("none", "placebo", "small_shift"):
        for s in streams[kind]:
            real = s.face & s.meta["real_face"]
            pred = s.probs.argmax(axis=1)
            shown_acc.append((pred[real] == s.meta["shown"][real]).mean())
            true_acc.append((pred[real] == s.true_emotion[real]).mean())
    shown_acc, true_acc = np.array(shown_acc), np.array(true_acc)
    assert 0.45 <= shown_acc.mean() <= 0.75
    assert np.mean((shown_acc > 0.35) & (shown_acc < 0.9)) > 0.9
    assert shown_acc.max() < 0.95
    assert true_acc.mean() < shown_acc.mean() and true_acc.mean() > 1 / 7 + 0.1
    conf = np.concatenate([s.probs.max(axis=1) for s in streams["placebo"]])
    assert 0.25 < conf.mean() < 0.9 and conf.min() < 0.3 and conf.max() > 0.95


def test_faceless_posts_and_withdrawal(streams):
    face_neg, face_pos, faceless = [], [], []
    for kind in ("none", "placebo", "small_shift"):
        for s in streams[kind]:
            neg = np.isin(s.true_emotion, NEG)
            face_neg.append(s.face[neg].sum()), face_pos.append(s.face[~neg].sum())
            faceless.append((~s.face).mean())
    assert 0.1 < np.mean(faceless) < 0.7
    totals = {kind: [] for kind in ("none", "placebo", "small_shift")}
    n_neg = sum(int(np.isin(s.true_emotion, NEG).sum()) for k in totals for s in streams[k])
    n_pos = sum(int((~np.isin(s.true_emotion, NEG)).sum()) for k in totals for s in streams[k])
    assert sum(face_neg) / n_neg < sum(face_pos) / n_pos - 0.05
    drop, slower = [], []
    for s in streams["abrupt_pos_neg"]:
        a, b, c = max(s.start - 150, 0), s.start, s.start + 150
        drop.append(s.face[b:c].mean() - s.face[a:b].mean())
        slower.append(np.median(s.gaps[b:c]) > np.median(s.gaps[a:b]))
    assert np.mean(drop) < -0.05 and np.mean(slower) > 0.6


def test_events_pose_happy_faces(streams):
    group_happy, own_happy = [], []
    for s in streams["none"]:
        shown, group = s.meta["shown"], s.meta["group"] & s.face
        own = s.face & s.meta["real_face"] & ~s.meta["group"]
        group_happy.append((shown[group] == 3).mean())
        own_happy.append((shown[own] == 3).mean())
        assert s.meta["event"].any()
    assert np.mean(group_happy) > np.mean(own_happy)


def test_generation_cost():
    assert_cheap(fam.make_streams)
