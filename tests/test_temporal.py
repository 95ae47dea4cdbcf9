"""The temporal model: features, the synthetic generator, training, and the committed ONNX step."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import model.features
import model.synthetic
from export.manifest import REPOSITORY, sha256_of
from model.features import post_features
from model.synthetic import KINDS, LABEL_DELAY, Kind, generate_dataset, generate_user, stack
from model.temporal import load_checkpoint
from model.train_temporal import CHECKPOINT, EVAL_SEED, auc
from model.train_temporal import main as train_main

ARTIFACT = REPOSITORY / "temporal" / "1"
TEST_SEED = EVAL_SEED + 3  # held out: training never draws from it, the exporter's figures use +0..+2


@pytest.fixture(scope="module")
def committed():
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    net, checkpoint = load_checkpoint(CHECKPOINT)
    return net, checkpoint, json.loads((ARTIFACT / "manifest.json").read_text())


def test_docstring_examples():
    for module in (model.features, model.synthetic):
        assert doctest.testmod(module).failed == 0


def test_post_features_hand_computed():
    x = post_features([0.2, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1], gap_seconds=7200.0, face=False)
    # valence: -0.16 - 0.07 - 0.06 + 0.3 - 0.1 + 0.03 + 0 = -0.06; log_gap: log1p(2) = 1.098612
    np.testing.assert_allclose(x, [0.2, 0.1, 0.1, 0.3, 0.1, 0.1, 0.1, -0.06, math.log(3.0), 0.0], atol=1e-6)
    assert x.dtype == np.float32
    assert post_features(np.eye(7)[3], gap_seconds=-50.0, face=True)[7:].tolist() == [1.0, 0.0, 1.0]
    assert post_features(np.eye(7)[4], gap_seconds=1e9, face=True)[7:].tolist() == [-1.0, 10.0, 1.0]
    with pytest.raises(ValueError):
        post_features([0.5, 0.5], gap_seconds=0.0, face=True)


def test_generator_is_seeded_and_makes_every_kind():
    a, b = generate_dataset(123, 10, 64), generate_dataset(123, 10, 64)
    for x, y in zip(a, b):
        assert (x.probs == y.probs).all() and (x.gaps == y.gaps).all() and (x.drift == y.drift).all()
    assert not np.array_equal(a[0].probs, generate_dataset(124, 10, 64)[0].probs)
    assert [t.kind for t in a[:len(KINDS)]] == list(KINDS)
    for t in a:
        np.testing.assert_allclose(t.probs.sum(axis=1), 1.0, atol=1e-5)
        assert t.gaps[0] == 0.0 and (t.gaps >= 0).all()
        assert t.probs.shape == (64, 7) and t.face.shape == t.drift.shape == t.regime.shape == (64,)


@pytest.mark.parametrize("kind", list(Kind))
def test_generator_labels_follow_the_change_points(kind):
    rng = np.random.default_rng(5)
    for _ in range(20):
        t = generate_user(rng, kind, 96)
        if kind in (Kind.STABLE, Kind.TRANSIENT):
            assert t.drift.sum() == 0
            assert all(c.kind == "dip" and 1 <= c.end - c.start <= 3 for c in t.changes)
            assert (len(t.changes) == 0) == (kind is Kind.STABLE)
            continue
        (change,) = t.changes
        first = int(np.argmax(t.drift > 0))
        if kind is Kind.GRADUAL:
            assert change.start < first and 10 <= change.ramp <= 30
        elif kind is Kind.SHIFT:  # a small change is labelled later: 3 to 13 posts after it starts
            assert change.start + LABEL_DELAY <= first <= change.start + 13
            assert (t.weight[change.start:first] == 0).all() and (t.regime[change.start:] == 1).all()
        else:
            assert first == change.start + LABEL_DELAY
            assert (t.weight[change.start:first] == 0).all() and (t.regime[change.start:first] == 1).all()
        if kind is Kind.EPISODE:
            assert t.drift[change.end + LABEL_DELAY - 1] == 1 and t.drift[change.end + LABEL_DELAY:].sum() == 0
        else:
            assert t.drift[first:].all()


def test_generator_looks_like_a_fer_cnn():
    timelines = generate_dataset(9, 200, 128)
    probs = np.concatenate([t.probs for t in timelines])
    face = np.concatenate([t.face for t in timelines])
    correct = probs.argmax(axis=1) == np.concatenate([t.emotion for t in timelines])
    assert 0.80 < face.mean() < 0.90
    assert 0.55 < correct[face].mean() < 0.72 and correct[~face].mean() < correct[face].mean() - 0.15
    assert np.percentile(probs.max(axis=1), 5) < 0.35 and np.percentile(probs.max(axis=1), 95) > 0.95


@pytest.mark.slow
def test_smoke_training_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "smoke.pt"
    assert train_main(["--smoke", "--steps", "20", "--out", str(out)]) == 0
    net, checkpoint = load_checkpoint(out)
    first, final = checkpoint["training"]["first_losses"], checkpoint["training"]["final_losses"]
    assert all(math.isfinite(v) for v in (*first.values(), final["drift_bce"], final["next_ce"]))
    assert final["drift_bce"] + final["next_ce"] < first["drift_bce"] + first["next_ce"]
    drift, next_dist, (h, c) = net(torch.zeros(2, 5, 10))
    assert drift.shape == (2, 5) and next_dist.shape == (2, 5, 7) and h.shape == (2, net.config.hidden_size)


def test_committed_onnx_step_matches_torch_sequence(committed):
    import onnxruntime as ort

    net, checkpoint, manifest = committed
    assert manifest["sha256"] == sha256_of(ARTIFACT / "model.onnx")
    assert manifest["hidden_size"] == net.config.hidden_size == checkpoint["config"]["hidden_size"]
    assert [i["name"] for i in manifest["inputs"]] == ["x", "h", "c"]
    assert [o["name"] for o in manifest["outputs"]] == ["drift_probability", "next_distribution", "h_out", "c_out"]
    assert manifest["features"]["order"] == list(model.features.FEATURE_NAMES)
    assert manifest["parity"]["onnx_step_vs_torch_sequence_max_abs"] <= 1e-5

    x = stack(generate_dataset(TEST_SEED, 10, 64))["features"]  # (B, T, 10), kinds round-robin
    with torch.no_grad():
        drift_ref, next_ref, _ = net(torch.from_numpy(x))
    runner = ort.InferenceSession(str(ARTIFACT / "model.onnx"), providers=["CPUExecutionProvider"])
    h = np.zeros((10, net.config.hidden_size), np.float32)
    c = np.zeros_like(h)
    worst = 0.0
    for t in range(x.shape[1]):
        drift, next_dist, h, c = runner.run(None, {"x": x[:, t], "h": h, "c": c})
        assert drift.shape == (10,) and next_dist.shape == (10, 7)
        worst = max(worst, np.abs(drift - drift_ref[:, t].numpy()).max(), np.abs(next_dist - next_ref[:, t].numpy()).max())
    assert worst <= 1e-5
    single = runner.run(None, {"x": x[:1, 0], "h": h[:1] * 0, "c": c[:1] * 0})  # batch of one, new user
    assert abs(float(single[0][0]) - float(drift_ref[0, 0])) <= 1e-5


def test_committed_drift_head_separates_lasting_change_from_noise(committed):
    net = committed[0]
    rng = np.random.default_rng(TEST_SEED)
    by_kind = {kind: [generate_user(rng, kind, 96) for _ in range(60)]
               for kind in (Kind.STABLE, Kind.TRANSIENT, Kind.ABRUPT)}
    with torch.no_grad():
        drift = {kind: net(torch.from_numpy(stack(ts)["features"]))[0].numpy() for kind, ts in by_kind.items()}
    stable = drift[Kind.STABLE][:, 16:].mean()
    dips = np.mean([drift[Kind.TRANSIENT][i, c.start:c.end + 4].max()
                    for i, t in enumerate(by_kind[Kind.TRANSIENT]) for c in t.changes])
    ten_in = np.mean([drift[Kind.ABRUPT][i, t.changes[0].start + 10] for i, t in enumerate(by_kind[Kind.ABRUPT])])
    # measured on this seed with the committed model: stable 0.061, dip max 0.113, abrupt +10 0.581,
    # AUC 0.982 (an untrained net: 0.49, 0.49, 0.49, 0.46)
    assert stable < 0.15 and dips < 0.25
    assert ten_in > stable + 0.4 and ten_in > dips + 0.35
    labels = np.concatenate([t.drift[t.weight > 0] for t in by_kind[Kind.ABRUPT] + by_kind[Kind.STABLE]])
    scores = np.concatenate([drift[k][i][t.weight > 0] for k in (Kind.ABRUPT, Kind.STABLE)
                             for i, t in enumerate(by_kind[k])])
    assert auc(scores, labels) > 0.95


def test_auc_on_known_rankings():
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5
    assert auc(np.array([0.9, 0.1]), np.array([0, 1])) == 0.0


@pytest.mark.slow
def test_an_export_never_rewrites_a_version_unless_asked(tmp_path, capsys):
    """`python -m export temporal` wrote temporal:1 by default, over whatever was there, and any --version
    over an existing one: users' stored states were then continued by other weights under the same tag."""
    from export.temporal import main as export_main

    checkpoint = str(Path(__file__).resolve().parent.parent / "model" / "checkpoints" / "temporal-4.pt")
    quick = ["--checkpoint", checkpoint, "--out", str(tmp_path), "--eval-users", "20"]
    assert export_main(quick) == 0 and export_main(quick) == 0  # the first free version, then the next
    first = (tmp_path / "temporal" / "1" / "manifest.json").read_bytes()
    assert (tmp_path / "temporal" / "2" / "manifest.json").exists()
    capsys.readouterr()
    assert export_main([*quick, "--version", "1"]) == 2
    said = capsys.readouterr().err
    assert "temporal:1 exists" in said and "--replace" in said
    assert (tmp_path / "temporal" / "1" / "manifest.json").read_bytes() == first
    assert export_main([*quick, "--version", "1", "--replace"]) == 0
    # a failed export leaves no version behind: its folder had counted as "the highest", and the service,
    # serving the highest unless pinned, refused to start
    assert export_main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
    from service import model_repository

    assert model_repository.versions(tmp_path, "temporal") == [1, 2]
    assert model_repository.load(tmp_path, "temporal").version == 2
