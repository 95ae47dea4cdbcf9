"""ONNX Runtime sessions and the choice of execution provider.

``EMODRIFT_PROVIDER=auto`` takes CUDA when onnxruntime-gpu sees a GPU, else the CPU; the reason is
kept so ``/v1/model`` and the model-info metric can say why a replica runs where it runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from service.emotions import check_manifest
from service.model_repository import Artifact

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class ProviderChoice:
    provider: str  # "cuda" or "cpu"
    reason: str

    @property
    def ort_providers(self) -> list[str]:
        return [CUDA, CPU] if self.provider == "cuda" else [CPU]


def load_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries of the ``nvidia-*`` wheels, when onnxruntime-gpu came from PyPI
    with them: it does not find them by itself, and a session asked for CUDA would then run on the CPU
    with only a logged error. A system-wide CUDA (the GPU image) needs nothing; older onnxruntime
    releases have no ``preload_dlls``."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        preload()


def choose_provider(requested: str) -> ProviderChoice:
    available = ort.get_available_providers()
    if requested == "cpu":
        return ProviderChoice("cpu", "EMODRIFT_PROVIDER=cpu")
    if CUDA in available:
        load_cuda_libraries()
        return ProviderChoice("cuda", f"{CUDA} available (requested {requested})")
    if requested == "cuda":
        raise RuntimeError(f"EMODRIFT_PROVIDER=cuda but onnxruntime offers only {available}")
    return ProviderChoice("cpu", f"no {CUDA} in onnxruntime {ort.__version__} ({', '.join(available)})")


def open_session(artifact: Artifact, choice: ProviderChoice, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    # No busy-waiting: onnxruntime's idle intra-op threads otherwise spin after every run, CPU that
    # the decode threads and the event loop need (the runs here are small: a few ms at most).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(artifact.model_path), options, providers=choice.ort_providers)
    log.info("loaded %s on %s (%s)", artifact.tag, session.get_providers()[0], choice.reason)
    return session


class EmotionModel:
    """The emotion CNN: (N,1,64,64) normalised grayscale → probabilities (N,7), embedding (N,E)."""

    def __init__(self, artifact: Artifact, choice: ProviderChoice, threads: int = 0) -> None:
        check_manifest(artifact.tag, artifact.manifest)  # before a session: its outputs are read in LABELS order
        self.artifact = artifact
        self.provider = choice
        self.session = open_session(artifact, choice, threads)
        self.labels: list[str] = list(artifact.manifest["labels"])
        self._input = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probabilities, embedding = self.session.run(
            ["probabilities", "embedding"], {self._input: batch.astype(np.float32, copy=False)}
        )
        return probabilities, embedding
