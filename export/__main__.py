"""``python -m export {emotion-cnn|temporal|score-profile|face-detector|triton|all}``: write versioned, parity-checked ONNX artifacts.

Each exporter lives in its own module and writes ``model_repository/<name>/<version>/`` with
``model.onnx`` and ``manifest.json`` (and ``<name>/config.pbtxt`` for Triton, regenerated from the
manifests each time one is written; ``triton`` regenerates them all). Run ``python -m export <target> --help`` for its options.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__.strip())
        return 0
    target, rest = argv[0], argv[1:]
    if target == "emotion-cnn":
        from export.emotion_cnn import main as run
        return run(rest)
    if target == "temporal":
        from export.temporal import main as run
        return run(rest)
    if target == "score-profile":
        from export.score_profile import main as run
        return run(rest)
    if target == "face-detector":
        from export.face_detector import main as run
        return run(rest)
    if target == "triton":
        from export.triton import main as run
        return run(rest)
    if target == "all":
        from export.emotion_cnn import main as run_cnn
        from export.temporal import main as run_temporal
        return run_cnn(rest) or run_temporal(rest)
    print(f"unknown target {target!r}; expected emotion-cnn, temporal, score-profile, face-detector, triton or all", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
