"""The serving path never imports torch or model/ (it runs from ONNX files alone), checked in a
fresh interpreter so no other test's imports leak in."""

from __future__ import annotations

import subprocess
import sys


def test_the_service_imports_neither_torch_nor_model() -> None:
    code = ("import sys, service.app, service.cli, service.webhooks.dispatcher; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'model', 'export'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
