"""The fast detector (BlazeFace, ONNX) loses no face that the Haar reference finds on the benchmark posts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from benchmarks import post_set
from benchmarks.faces import evaluate
from service import model_repository
from service.config import Settings
from service.faces import BlazeFaceDetector
from service.images import FaceDetector

pytestmark = pytest.mark.slow  # left out of `make test-fast` (see README)


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector(model_repository.load(Settings().model_repository, "face_detector"))


@pytest.mark.parametrize("kind", ["jpeg1080", "jpeg4000"])
def test_blazeface_recall_matches_haar_on_the_benchmark_posts(blazeface, kind):
    posts = post_set.face_posts(kind, n=60) + post_set.no_face_posts(kind, n=20)
    fast, slow = evaluate(blazeface, posts), evaluate(FaceDetector(), posts)

    assert fast.found >= slow.found and fast.found >= 0.95 * fast.faces, (fast, slow)
    assert fast.false_boxes <= max(3, slow.false_boxes), (fast, slow)
    assert fast.no_face_hits <= 2, fast
    assert fast.ms_per_image < slow.ms_per_image / 4, (fast, slow)


def test_a_face_across_two_windows_of_a_panorama_is_found(blazeface):
    post = post_set.face_post(3, "jpeg1080")
    wide = Image.new("L", (2160, 1080), 128)
    wide.paste(Image.open(io.BytesIO(post.data)).convert("L"), (540, 0))  # centre: straddles 1080
    x, y, w, h = post.face
    boxes = blazeface.detect(np.asarray(wide))
    assert any(abs(bx + bw / 2 - (540 + x + w / 2)) < w / 2 for bx, _, bw, _ in boxes), (boxes, post.face)
