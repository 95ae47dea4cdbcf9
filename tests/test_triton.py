"""model_repository/<model>/config.pbtxt: Triton's ModelConfig (parsed by the protobuf that tritonclient
ships, unknown fields refused), generated from the manifests, and true to each ONNX graph."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from export import triton
from service.config import Settings

REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"
MODELS = sorted(p.name for p in REPOSITORY.iterdir() if p.is_dir())
ONNX_TYPES = {onnx.TensorProto.FLOAT: mc.TYPE_FP32, onnx.TensorProto.INT64: mc.TYPE_INT64}


def parse(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())  # raises on any field Triton does not know


def graph_shape(value: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def test_every_model_has_a_config() -> None:
    assert MODELS == ["emotion_cnn", "face_detector", "temporal"]
    for name in MODELS:
        assert (REPOSITORY / name / triton.CONFIG).is_file(), f"{name}: run `python -m export triton`"


@pytest.mark.parametrize("name", MODELS)
def test_the_config_is_up_to_date_with_the_manifests(name: str) -> None:
    latest = triton.manifests(REPOSITORY / name)[-1]
    assert (REPOSITORY / name / triton.CONFIG).read_text() == triton.render(latest)


@pytest.mark.parametrize("name", MODELS)
def test_the_config_matches_every_version_of_the_onnx_graph(name: str) -> None:
    config = parse(REPOSITORY / name / triton.CONFIG)
    assert config.name == name and config.backend == "onnxruntime"
    versions = sorted(int(p.name) for p in (REPOSITORY / name).iterdir() if p.name.isdigit())
    for version in versions:
        graph = onnx.load(str(REPOSITORY / name / str(version) / "model.onnx"), load_external_data=False).graph
        initializers = {i.name for i in graph.initializer}
        graph_inputs = {v.name: v for v in graph.input if v.name not in initializers}
        graph_outputs = {v.name: v for v in graph.output}
        assert sorted(i.name for i in config.input) == sorted(graph_inputs)  # Triton must feed every input
        assert {o.name for o in config.output} <= set(graph_outputs)
        for tensor, value in [(t, graph_inputs[t.name]) for t in config.input] + \
                             [(t, graph_outputs[t.name]) for t in config.output]:
            assert tensor.data_type == ONNX_TYPES[value.type.tensor_type.elem_type], tensor.name
            shape = graph_shape(value)
            if config.max_batch_size > 0:  # the leading axis is the batch: dynamic in the graph, not in dims
                assert shape[0] is None, f"{name}/{version} {tensor.name}: batch axis is fixed {shape}"
                dims = list(tensor.reshape.shape) if tensor.HasField("reshape") else list(tensor.dims)
                assert fits(dims, shape[1:]), (tensor.name, dims, shape)
            else:
                assert fits(list(tensor.dims), shape), (tensor.name, list(tensor.dims), shape)


def fits(dims: list[int], shape: list[int | None]) -> bool:
    """Triton's check: the config's dims against the graph's, where the graph leaves an axis unknown."""
    return len(dims) == len(shape) and all(s is None or s == d for d, s in zip(dims, shape))


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_answers_the_shapes_the_config_promises(name: str) -> None:
    """What Triton would do with a request of the config's shapes (a batch of 3 where it batches):
    run the latest version on zeros and compare every output's shape with its declaration."""
    config = parse(REPOSITORY / name / triton.CONFIG)
    version = triton.manifests(REPOSITORY / name)[-1]["version"]
    session = ort.InferenceSession(str(REPOSITORY / name / str(version) / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    batch = [3] if config.max_batch_size > 0 else []
    feeds = {i.name: np.zeros(batch + list(i.dims), np.float32) for i in config.input}
    outputs = session.run([o.name for o in config.output], feeds)
    for declared, value in zip(config.output, outputs):
        dims = list(declared.reshape.shape) if declared.HasField("reshape") else list(declared.dims)
        assert list(value.shape) == batch + dims, (declared.name, value.shape)


def test_the_cnn_batches_like_the_service_and_carries_its_labels() -> None:
    config = parse(REPOSITORY / "emotion_cnn" / triton.CONFIG)
    defaults = Settings.model_fields
    assert config.max_batch_size == defaults["max_batch_size"].default
    assert config.dynamic_batching.max_queue_delay_microseconds == round(defaults["max_batch_wait_ms"].default * 1000)
    probabilities = next(o for o in config.output if o.name == "probabilities")
    labels = (REPOSITORY / "emotion_cnn" / probabilities.label_filename).read_text().split()
    manifest = triton.manifests(REPOSITORY / "emotion_cnn")[-1]
    assert labels == manifest["labels"] and len(labels) == probabilities.dims[0]
    temporal = parse(REPOSITORY / "temporal" / triton.CONFIG)
    assert [g.kind for g in temporal.instance_group] == [mc.ModelInstanceGroup.KIND_CPU]


def test_versions_that_disagree_cannot_share_a_config(tmp_path: Path) -> None:
    shutil.copytree(REPOSITORY / "temporal", tmp_path / "temporal")
    path = tmp_path / "temporal" / "2" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["inputs"][1]["shape"] = ["N", 64]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="differ in inputs or outputs"):
        triton.write_config(tmp_path / "temporal")
    with pytest.raises(ValueError, match="only the leading axis"):
        triton.render({**manifest, "inputs": [{"name": "x", "dtype": "float32", "shape": ["N", "T"]}]})
