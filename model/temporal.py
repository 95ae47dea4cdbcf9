"""The temporal half of the CNN-LSTM: one LSTM step per post, two heads on its hidden state.

::

    x (B, T, 10) raw features --(x - mean) / std--> LSTM(10 -> H) --h--> head_next  -> softmax  (B, T, 7)
                                                                  \\--> head_drift -> sigmoid  (B, T)

- ``next_dist[t]``: the distribution of the CNN probabilities of post t+1 given posts 0..t;
- ``drift_prob[t]``: the probability that posts up to t come from a lasting change of emotional regime
  away from the user's baseline (label defined in :mod:`model.synthetic`).

The input normalisation is a fixed affine map stored in the config, so the exported ONNX step takes raw
features. :meth:`TemporalNet.step` spells out the LSTM cell with the same weights as ``nn.LSTM`` (gate
order i, f, g, o) so the ONNX graph is plain MatMul/Sigmoid/Tanh that any runtime executes; the parity
test checks it against the full-sequence ``forward``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from model.features import N_CLASSES, N_FEATURES


@dataclass
class TemporalConfig:
    n_features: int = N_FEATURES
    hidden_size: int = 48
    n_classes: int = N_CLASSES
    input_mean: list[float] = field(default_factory=lambda: [0.0] * N_FEATURES)
    input_std: list[float] = field(default_factory=lambda: [1.0] * N_FEATURES)

    def to_dict(self) -> dict:
        return asdict(self)


class TemporalNet(nn.Module):
    def __init__(self, config: TemporalConfig):
        super().__init__()
        self.config = config
        self.register_buffer("input_mean", torch.tensor(config.input_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("input_std", torch.tensor(config.input_std, dtype=torch.float32), persistent=False)
        self.lstm = nn.LSTM(config.n_features, config.hidden_size, num_layers=1, batch_first=True)
        self.head_next = nn.Linear(config.hidden_size, config.n_classes)
        self.head_drift = nn.Linear(config.hidden_size, 1)

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch, self.config.hidden_size)
        return zeros, zeros.clone()

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std  # type: ignore[operator]  # buffers: Tensor | Module to torch

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """h (..., H) -> drift logit (...), next-emotion logits (..., 7), drift prob (...)."""
        drift_logit = self.head_drift(h).squeeze(-1)
        return drift_logit, self.head_next(h), torch.sigmoid(drift_logit)

    def forward_logits(self, x: torch.Tensor, state=None):
        """x (B, T, 10) -> drift logits (B, T), next logits (B, T, 7), (h, c) each (B, H)."""
        if state is not None:
            state = (state[0].unsqueeze(0), state[1].unsqueeze(0))  # nn.LSTM wants (layers, B, H)
        out, (h, c) = self.lstm(self._normalise(x), state)  # out (B, T, H)
        drift_logit, next_logits, _ = self._heads(out)
        return drift_logit, next_logits, (h.squeeze(0), c.squeeze(0))

    def forward(self, x: torch.Tensor, state=None):
        """x (B, T, 10) -> drift_prob (B, T), next_dist (B, T, 7), (h, c) each (B, H)."""
        drift_logit, next_logits, state = self.forward_logits(x, state)
        return torch.sigmoid(drift_logit), torch.softmax(next_logits, dim=-1), state

    def step(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """One post per user: x (N, 10), h and c (N, H) -> drift_prob (N,), next_dist (N, 7), h_out, c_out."""
        z = self._normalise(x)  # (N, F)
        # the LSTM's weights are Tensor | Module to torch's stubs (nn.Module.__getattr__)
        gates = (z @ self.lstm.weight_ih_l0.T + self.lstm.bias_ih_l0  # type: ignore[operator]
                 + h @ self.lstm.weight_hh_l0.T + self.lstm.bias_hh_l0)  # type: ignore[operator]  # (N, 4H)
        i, f, g, o = gates.chunk(4, dim=1)  # each (N, H)
        c_out = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_out = torch.sigmoid(o) * torch.tanh(c_out)
        _, next_logits, drift_prob = self._heads(h_out)
        return drift_prob, torch.softmax(next_logits, dim=-1), h_out, c_out


def load_checkpoint(path) -> tuple[TemporalNet, dict]:
    """A trained net in eval mode, and the checkpoint's metadata (config, training record)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    net = TemporalNet(TemporalConfig(**checkpoint["config"]))
    net.load_state_dict(checkpoint["state_dict"])
    net.eval()
    return net, checkpoint
