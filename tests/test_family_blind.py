"""The blind stream family (model/families/blind.py): its contract, its labels, and that the world it
claims to simulate is the one it generates. Seeded; every figure asserted is an expectation over many
users, with room for sampling but not for a broken generator."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from model.families import blind
from model.families.blind import KINDS, LABELS, NEGATIVE, Stream, make_stream, make_streams
from tests.generation_cost import assert_cheap

CHANGES = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode", "two_changes")
N_PER_KIND = 40


@pytest.fixture(scope="module")
def streams() -> dict[str, list[Stream]]:
    return {kind: make_streams(11, kind, 20 if kind == "none" else N_PER_KIND) for kind in KINDS}


def _share(s: Stream, lo: int, hi: int | None, classes: np.ndarray) -> float:
    return float(classes[s.true_emotion[lo:hi]].mean())


def _hist(s: Stream, lo: int, hi: int | None) -> np.ndarray:
    return np.bincount(s.true_emotion[lo:hi], minlength=7) / len(s.true_emotion[lo:hi])


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a - b).sum())


def test_the_api_names_match_fer2013_and_the_kinds() -> None:
    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert KINDS == ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
                     "episode", "two_changes", "placebo")
    assert [LABELS[i] for i in np.flatnonzero(NEGATIVE)] == ["angry", "disgust", "fear", "sad"]


def test_the_module_is_standalone_numpy_only() -> None:
    tree = ast.parse(Path(blind.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported == {"__future__", "dataclasses", "numpy"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_seed_gives_the_same_streams_and_stream_i_does_not_depend_on_n(kind: str) -> None:
    a, b, c = make_streams(5, kind, 3), make_streams(5, kind, 3), make_streams(5, kind, 2)
    for x, y in zip(a, b):
        for field in ("probs", "gaps", "face", "true_emotion"):
            assert np.array_equal(getattr(x, field), getattr(y, field))
        assert (x.kind, x.start, x.end, x.start2) == (y.kind, y.start, y.end, y.start2)
    assert all(np.array_equal(x.probs, z.probs) for x, z in zip(a, c))
    other = make_streams(6, kind, 1)[0]
    assert other.probs.shape != a[0].probs.shape or not np.array_equal(other.probs, a[0].probs)


def test_make_stream_uses_only_the_generator_it_is_given() -> None:
    x, y = make_stream(np.random.default_rng(3), "gradual"), make_stream(np.random.default_rng(3), "gradual")
    assert np.array_equal(x.probs, y.probs) and np.array_equal(x.gaps, y.gaps) and x.start == y.start


def test_an_unknown_kind_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown kind 'sudden'"):
        make_stream(np.random.default_rng(0), "sudden")
    with pytest.raises(ValueError, match="unknown kind"):
        make_streams(0, "sudden", 1)


def test_shapes_dtypes_and_probabilities(streams: dict[str, list[Stream]]) -> None:
    for kind, group in streams.items():
        for s in group:
            t = len(s.probs)
            assert s.kind == kind
            assert s.probs.shape == (t, 7) and s.probs.dtype == np.float32
            assert np.all(s.probs >= 0) and np.allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
            assert s.gaps.shape == (t,) and s.gaps.dtype == np.float64
            assert s.gaps[0] == 0.0 and np.all(s.gaps[1:] > 0)
            assert s.face.shape == (t,) and s.face.dtype == np.bool_
            assert s.true_emotion.shape == (t,) and np.issubdtype(s.true_emotion.dtype, np.integer)
            assert s.true_emotion.min() >= 0 and s.true_emotion.max() < len(LABELS)


def test_the_labels_follow_each_kinds_rules(streams: dict[str, list[Stream]]) -> None:
    for s in streams["none"]:
        assert 1500 <= len(s.probs) <= 3000 and (s.start, s.end, s.start2) == (None, None, None)
    for kind in CHANGES + ("placebo",):
        for s in streams[kind]:
            t = len(s.probs)
            assert s.start is not None and 30 <= s.start <= 250, kind
            last = s.start2 if kind == "two_changes" else s.end if kind in ("transient", "episode") else s.start
            assert last is not None and t - last >= 150, kind
            assert (s.end is not None) == (kind in ("transient", "episode")), kind
            assert (s.start2 is not None) == (kind == "two_changes"), kind
            if kind == "transient":
                assert s.end - s.start in (1, 2)
            if kind == "episode":
                assert 12 <= s.end - s.start <= 60
            if kind == "two_changes":
                assert 150 <= s.start2 - s.start <= 300


def test_the_classifier_is_right_on_45_to_80_percent_of_each_users_face_posts(
        streams: dict[str, list[Stream]]) -> None:
    acc = np.array([np.mean(s.probs[s.face].argmax(axis=1) == s.true_emotion[s.face])
                    for group in streams.values() for s in group])
    assert np.all((acc >= 0.45) & (acc <= 0.8)), (acc.min(), acc.max())
    assert acc.max() - acc.min() > 0.15            # users differ, not one accuracy for all


def test_faceless_posts_say_little_about_the_mood(streams: dict[str, list[Stream]]) -> None:
    group = streams["placebo"] + streams["none"]
    on = np.mean([np.mean(s.probs[s.face].argmax(1) == s.true_emotion[s.face]) for s in group])
    off = np.mean([np.mean(s.probs[~s.face].argmax(1) == s.true_emotion[~s.face]) for s in group])
    assert off < on - 0.2, (on, off)
    share = np.array([1 - s.face.mean() for group in streams.values() for s in group])
    assert share.min() > 0.03 and share.max() < 0.7 and share.max() - share.min() > 0.2


def test_errors_follow_fer2013_confusions(streams: dict[str, list[Stream]]) -> None:
    true = np.concatenate([s.true_emotion[s.face] for g in streams.values() for s in g])
    pred = np.concatenate([s.probs[s.face].argmax(1) for g in streams.values() for s in g])
    wrong = true != pred
    most = {c: LABELS[np.bincount(pred[wrong & (true == i)], minlength=7).argmax()]
            for i, c in enumerate(LABELS)}
    assert most["fear"] in ("surprise", "sad") and most["surprise"] == "fear"
    assert most["disgust"] == "angry" and most["sad"] == "neutral"
    recall = {c: np.mean(pred[true == i] == i) for i, c in enumerate(LABELS)}
    assert recall["happy"] > recall["neutral"] > recall["fear"]


def test_confidence_ranges_from_flat_to_peaky_across_users(streams: dict[str, list[Stream]]) -> None:
    top = np.array([np.median(s.probs[s.face].max(axis=1)) for g in streams.values() for s in g])
    assert top.min() < 0.45 and top.max() > 0.8
    wrong_and_sure = np.concatenate([(s.probs.argmax(1) != s.true_emotion) & (s.probs.max(1) > 0.8)
                                     for s in streams["none"]])
    assert 0.01 < wrong_and_sure.mean() < 0.2       # confidently wrong happens, but not as a rule


def test_posting_is_bursty_heavy_tailed_and_follows_the_day(streams: dict[str, list[Stream]]) -> None:
    gaps = np.concatenate([s.gaps[1:] for s in streams["none"]])
    assert np.median(gaps) < 3600 and gaps.mean() > 6 * 3600            # bursts, then long silences
    assert gaps.min() < 60 and gaps.max() > 7 * 86400                    # seconds to weeks
    rates = np.array([len(s.gaps) / s.gaps.sum() * 86400 for s in streams["none"]])  # posts a day
    assert rates.max() / rates.min() > 5
    quiet = []
    for s in streams["none"]:
        hour = (np.cumsum(s.gaps) / 3600 % 24).astype(int)              # clock up to a shift per user
        per3h = np.convolve(np.bincount(hour, minlength=24)[np.r_[0:24, 0:2]], np.ones(3), "valid")
        quiet.append(per3h.min() / per3h.max())
    assert np.median(quiet) < 0.15                                       # few posts at night


def test_moods_stick_within_a_session(streams: dict[str, list[Stream]]) -> None:
    same_close, same_far = [], []
    for s in streams["none"]:
        e, g = s.true_emotion, s.gaps[1:]
        same = e[1:] == e[:-1]
        same_close.append(same[g < 1800].mean())
        same_far.append(same[g > 3 * 86400].mean())
    assert np.mean(same_close) > np.mean(same_far) + 0.15


def test_negative_share_rises_after_a_pos_neg_start(streams: dict[str, list[Stream]]) -> None:
    group = streams["abrupt_pos_neg"]
    before = np.array([_share(s, 0, s.start, NEGATIVE) for s in group])
    after = np.array([_share(s, s.start, None, NEGATIVE) for s in group])
    assert before.mean() < 0.35 and after.mean() - before.mean() > 0.3
    seen = np.array([(s.probs[:s.start][s.face[:s.start]][:, NEGATIVE].sum(1).mean(),
                      s.probs[s.start:][s.face[s.start:]][:, NEGATIVE].sum(1).mean()) for s in group])
    assert seen[:, 1].mean() - seen[:, 0].mean() > 0.1                   # visible through the classifier


def test_a_gloomy_user_turns_happy_or_neutral_after_neg_pos(streams: dict[str, list[Stream]]) -> None:
    group = streams["abrupt_neg_pos"]
    before = np.mean([_share(s, 0, s.start, NEGATIVE) for s in group])
    after = np.mean([_share(s, s.start, None, NEGATIVE) for s in group])
    assert before > 0.45 and before - after > 0.3


def test_a_small_shift_is_small_and_a_placebo_is_no_shift(streams: dict[str, list[Stream]]) -> None:
    rise = [_share(s, s.start, None, NEGATIVE) - _share(s, 0, s.start, NEGATIVE) for s in streams["small_shift"]]
    assert 0.1 <= np.mean(rise) <= 0.3
    still = [_share(s, s.start, None, NEGATIVE) - _share(s, 0, s.start, NEGATIVE) for s in streams["placebo"]]
    assert abs(np.mean(still)) < 0.05


def test_a_gradual_change_ramps(streams: dict[str, list[Stream]]) -> None:
    moved = [_tv(_hist(s, 0, s.start), _hist(s, len(s.probs) - 150, None)) for s in streams["gradual"]]
    first = [_tv(_hist(s, 0, s.start), _hist(s, s.start, s.start + 5)) for s in streams["gradual"]]
    assert np.mean(moved) > 0.3 and np.mean(first) < np.mean(moved)


def test_a_transient_dip_is_one_or_two_seen_posts_of_another_mood(streams: dict[str, list[Stream]]) -> None:
    usual = []
    for s in streams["transient"]:
        dip = s.true_emotion[s.start:s.end]
        assert np.all(s.face[s.start:s.end]) and len(set(dip.tolist())) == 1
        usual.append(_hist(s, 0, s.start)[dip[0]])
    assert np.mean(usual) < 0.12                                         # not the user's usual mood
    after = [_tv(_hist(s, 0, s.start), _hist(s, s.end, None)) for s in streams["transient"]]
    assert np.mean(after) < 0.2


def test_an_episode_recovers_to_the_old_pattern(streams: dict[str, list[Stream]]) -> None:
    during = [_tv(_hist(s, 0, s.start), _hist(s, s.start, s.end)) for s in streams["episode"]]
    after = [_tv(_hist(s, 0, s.start), _hist(s, s.end, None)) for s in streams["episode"]]
    assert np.mean(during) > 0.3 and np.mean(after) < np.mean(during) - 0.15


def test_two_changes_reach_a_third_pattern(streams: dict[str, list[Stream]]) -> None:
    group = streams["two_changes"]
    first = [_tv(_hist(s, 0, s.start), _hist(s, s.start, s.start2)) for s in group]
    second = [_tv(_hist(s, s.start, s.start2), _hist(s, s.start2, None)) for s in group]
    third = [_tv(_hist(s, 0, s.start), _hist(s, s.start2, None)) for s in group]
    assert np.mean(first) > 0.3 and np.mean(second) > 0.3 and np.mean(third) > 0.2


def test_200_users_without_change_take_seconds_not_minutes() -> None:
    assert_cheap(make_streams)
