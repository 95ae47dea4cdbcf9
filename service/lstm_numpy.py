"""The temporal model's one-post step in numpy, with the weights read from its ONNX file.

Why: one step is ~11k multiply-adds, a few µs of maths, but most of an onnxruntime ``Session.run``
is call overhead, slower than this step alone and a visible share of an observation post's CPU in
the running service (the figures: docs/performance.md, "Figures behind choices in the code").
The weights come from the same sha-checked ``model.onnx`` the service loads, so the artifact stays
the one truth; ``TemporalModel`` checks this step against onnxruntime at start-up and keeps
onnxruntime whenever they disagree or the graph is not the LSTM cell ``export/temporal.py`` writes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import numpy as np


class NumpyLSTMStep:
    """``(x (F,), h (H,), c (H,)) → (drift, next (7,), h', c')`` for one user, float32.

    The two bias vectors are summed and the gate columns reordered i, f, o, g so one sigmoid covers
    three. The input normalisation stays a step of its own, in the order the ONNX graph does it.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, w_x: np.ndarray, w_h: np.ndarray, bias: np.ndarray,
                 w_drift: np.ndarray, b_drift: np.ndarray, w_next: np.ndarray, b_next: np.ndarray) -> None:
        hidden = w_h.shape[0]
        order = np.r_[0:2 * hidden, 3 * hidden:4 * hidden, 2 * hidden:3 * hidden]  # i f g o → i f o g
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.w = np.concatenate([w_x, w_h])[:, order].astype(np.float32)  # (F+H, 4H)
        self.b = bias[order].astype(np.float32)
        self.w_heads = np.concatenate([w_drift, w_next]).T.astype(np.float32)  # (H, 1+7)
        self.b_heads = np.concatenate([b_drift, b_next]).astype(np.float32)
        self.hidden = hidden

    def __call__(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        n = self.hidden
        gates = np.concatenate(((x - self.mean) / self.std, h)) @ self.w + self.b
        sig = 1.0 / (1.0 + np.exp(-gates[:3 * n]))
        c2 = sig[n:2 * n] * c + sig[:n] * np.tanh(gates[3 * n:])
        h2 = sig[2 * n:] * np.tanh(c2)
        heads = h2 @ self.w_heads + self.b_heads
        logits = heads[1:] - heads[1:].max()
        e = np.exp(logits)
        drift = 1.0 / (1.0 + math.exp(-float(heads[0])))
        return drift, e / e.sum(), h2, c2


def from_onnx(path: Path) -> NumpyLSTMStep | None:
    """The step's weights from the exported graph, or None when the graph is not the expected cell."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    graph = onnx.load(str(path)).graph
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def consumer(op: str, first: str) -> onnx.NodeProto:  # the node of type op whose first input is `first`
        # cast: onnx's stubs leave the protobuf's repeated fields as Any
        return cast("onnx.NodeProto", next(n for n in graph.node if n.op_type == op and n.input[0] == first))

    try:
        sub = consumer("Sub", "x")
        div = consumer("Div", sub.output[0])
        w_x = values[consumer("MatMul", div.output[0]).input[1]]
        w_h = values[consumer("MatMul", "h").input[1]]
        hidden = w_h.shape[0]
        biases = [values[i] for n in graph.node if n.op_type == "Add" for i in n.input
                  if i in values and values[i].shape == (4 * hidden,)]
        heads = {values[n.input[1]].shape[0]: (values[n.input[1]], values[n.input[2]])
                 for n in graph.node if n.op_type == "Gemm" and n.input[0] == "h_out"}
        (w_drift, b_drift), (w_next, b_next) = heads[1], heads[7]
        if len(biases) != 2:  # bias_ih and bias_hh
            return None
        return NumpyLSTMStep(values[sub.input[1]], values[div.input[1]], w_x, w_h, biases[0] + biases[1],
                             w_drift, b_drift, w_next, b_next)
    except (StopIteration, KeyError, IndexError, ValueError):
        return None
