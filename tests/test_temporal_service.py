"""The service's own feature code and ONNX step agree with model/ (which the service never imports)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.features import post_features
from model.temporal import load_checkpoint
from service import lstm_numpy, model_repository
from service.config import Settings
from service.inference import ProviderChoice
from service.temporal import TemporalModel


SETTINGS = Settings()


@pytest.fixture(scope="module", params=model_repository.versions(SETTINGS.model_repository, "temporal"))
def temporal(request: pytest.FixtureRequest) -> TemporalModel:
    """Every committed temporal version, as the service loads it."""
    artifact = model_repository.load(SETTINGS.model_repository, "temporal", request.param)
    return TemporalModel(artifact, ProviderChoice("cpu", "test"))


def test_service_features_equal_model_features(temporal: TemporalModel) -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        probs = rng.dirichlet(np.ones(7)).astype(np.float32)
        gap = float(rng.choice([0.0, -50.0, rng.exponential(20000), 1e9]))
        face = bool(rng.integers(2))
        np.testing.assert_allclose(temporal.features(probs, gap, face), post_features(probs, gap, face), atol=1e-6)


def test_service_steps_equal_the_torch_sequence(temporal: TemporalModel) -> None:
    net, _ = load_checkpoint(temporal.artifact.manifest["source"]["checkpoint"])  # the one it was exported from
    rng = np.random.default_rng(5)
    x = np.stack([post_features(rng.dirichlet(np.ones(7)), rng.exponential(7200), True) for _ in range(40)])
    net.eval()
    with torch.no_grad():
        drift_seq, next_seq, _ = net(torch.from_numpy(x)[None])
    h, c = temporal.initial_state()
    for t in range(len(x)):
        step = temporal.step(x[t], h, c)
        h, c = step.h, step.c
        assert abs(step.drift_probability - float(drift_seq[0, t])) < 1e-5
        np.testing.assert_allclose(step.next_distribution, next_seq[0, t].numpy(), atol=1e-5)


def test_a_model_expecting_other_features_is_refused(temporal: TemporalModel) -> None:
    artifact = temporal.artifact
    odd = model_repository.Artifact(artifact.name, artifact.version, artifact.model_path,
                                    {**artifact.manifest, "features": {**artifact.manifest["features"], "order": ["x"]}})
    with pytest.raises(ValueError, match="does not compute"):
        TemporalModel(odd, ProviderChoice("cpu", "test"))


def test_the_numpy_step_is_used_and_matches_onnxruntime_over_long_sequences(temporal: TemporalModel) -> None:
    assert temporal.engine == "numpy"
    assert temporal.numpy_parity(steps=2000, seed=11) < 1e-6  # relative, every output, chained state


def test_a_graph_that_is_not_the_lstm_cell_gives_no_numpy_step() -> None:
    cnn = model_repository.load(SETTINGS.model_repository, "emotion_cnn")
    assert lstm_numpy.from_onnx(cnn.model_path) is None


def test_a_numpy_step_that_disagrees_falls_back_to_onnxruntime(
    temporal: TemporalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A weight read wrongly cannot be caused with the committed artifacts: perturb one on purpose.
    real = lstm_numpy.from_onnx

    def off_by_a_little(path):  # type: ignore[no-untyped-def]
        step = real(path)
        step.b[0] += 1e-3
        return step

    monkeypatch.setattr(lstm_numpy, "from_onnx", off_by_a_little)
    fallback = TemporalModel(temporal.artifact, ProviderChoice("cpu", "test"))
    assert fallback.engine == "onnxruntime"
    h, c = fallback.initial_state()
    x = fallback.features(np.full(7, 1 / 7, dtype=np.float32), 60.0, True)
    step, reference = fallback.step(x, h, c), fallback.onnx_step(x, h, c)
    assert step.drift_probability == reference.drift_probability and np.array_equal(step.h, reference.h)
