"""The fast face detector: MediaPipe's BlazeFace (short range) through onnxruntime, a fraction of
Haar's cost per call (the figures: docs/performance.md).

The model (``model_repository/face_detector/<v>/``, made by ``python -m export face-detector``)
sees a 128x128 picture: the decoded grayscale image, longest side scaled to 128, centred on a
padded square. A wide or tall picture (aspect past ``MAX_ASPECT``) is looked at through
overlapping square windows instead, so a face a quarter of the shorter side
is not shrunk below what the model finds; boxes from all windows go through one weighted NMS
(MediaPipe's "blending": the boxes of one face are averaged by score).

On the benchmark posts (benchmarks/post_set.py, ``python -m benchmarks.faces``) it finds as many
faces as OpenCV's Haar cascade at 270 px or more (99 vs 95 of 100 in 1080x1080 JPEGs), in 1/5 to 1/17
of the time depending on the image; it draws fewer false boxes on JPEGs, slightly more on PNGs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import onnxruntime as ort

from service.model_repository import Artifact

Box = tuple[int, int, int, int]  # x, y, w, h in the input image's pixels
# BlazeFace's box runs from the eyebrows to the chin; the crop margin (images.MARGIN) and the CNN's
# picks were tuned on Haar's boxes, which sit higher and are larger. Measured on the 100 padded LFW
# faces (tests/image_fixtures.py): BlazeFace side / Haar side = 0.92 (sd 0.07), BlazeFace centre
# 0.12 of a side lower, 0.02 to the right. Boxes are reframed by that to keep the crop unchanged.
FRAME_SCALE = 1.0 / 0.92
FRAME_SHIFT = (-0.02, -0.12)  # centre shift, in box sides (x, y)
MAX_ASPECT = 1.2  # beyond this, square windows instead of one letterboxed view
# At most this many windows per image: a strip (2000x1 px in 81 bytes of PNG) asked for one window per
# pixel of its length, seconds of CPU (docs/limits.md). Past it the windows grow longer than square and are letterboxed, so
# a face in a strip that long is seen smaller than the model finds; a photo is at most 2:1 (3 windows).
MAX_WINDOWS = 5
NMS_IOU = 0.3  # MediaPipe's face detection graph uses 0.3 for its weighted NMS


def ssd_anchors(input_size: int, strides: list[int], per_layer: int, offset: float = 0.5) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], MediaPipe's SsdAnchorsCalculator with fixed-size anchors.

    Consecutive layers of one stride share a grid; each layer adds ``per_layer`` anchors per cell.

    >>> ssd_anchors(128, [8, 16, 16, 16], 2).shape  # 16*16*2 + 8*8*6
    (896, 2)
    >>> ssd_anchors(128, [8, 16, 16, 16], 2)[0].tolist()
    [0.03125, 0.03125]
    """
    out, i = [], 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        grid = math.ceil(input_size / strides[i])
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + offset) / grid, (ys + offset) / grid], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_layer * (j - i), axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out).astype(np.float32)


class BlazeFaceDetector:
    """Build once (app lifespan); ``detect`` may be called from many threads at once."""

    name = "blazeface-short-range"

    def __init__(self, artifact: Artifact, *, min_score: float | None = None) -> None:
        spec = artifact.manifest["anchors"]
        self.artifact = artifact
        self.size = int(spec["input_size"])
        self.box_scale = float(spec["box_scale"])
        self.min_score = float(spec["min_score"] if min_score is None else min_score)
        if not 0.0 < self.min_score < 1.0:
            raise ValueError("min_score must be in (0, 1)")
        self.anchors = ssd_anchors(self.size, spec["strides"], spec["anchors_per_layer"], spec["offset"])  # (896, 2)
        # Score threshold as a logit: no sigmoid over 896 anchors per call.
        self._min_logit = math.log(self.min_score / (1.0 - self.min_score))
        options = ort.SessionOptions()
        # One thread per call: the decode pool runs one detection per worker, that is the parallelism.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(artifact.model_path), options, providers=["CPUExecutionProvider"])
        cv2.setNumThreads(1)  # cv2.resize below: the decode threads are the parallelism

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Face boxes (x, y, w, h) in ``gray``'s coordinates; ``gray`` is (H, W) uint8."""
        h, w = gray.shape
        short, long = min(h, w), max(h, w)
        if long <= MAX_ASPECT * short:
            boxes, scores = self._detect_view(gray, 0, 0)
        else:
            # Windows of side `short`, steps of at most short / 2: a face up to half the shorter side wide
            # lies whole in one window. 4:3 → 2 windows, 2:1 → 3. Past MAX_WINDOWS, longer windows that
            # still overlap by half.
            n = math.ceil(2 * (long - short) / short) + 1
            side = short
            if n > MAX_WINDOWS:
                n, side = MAX_WINDOWS, math.ceil(2 * long / (MAX_WINDOWS + 1))
            parts = []
            for k in range(n):
                off = round(k * (long - side) / (n - 1))
                view = gray[:, off:off + side] if w > h else gray[off:off + side, :]
                parts.append(self._detect_view(view, off if w > h else 0, off if h > w else 0))
            boxes = np.concatenate([b for b, _ in parts])
            scores = np.concatenate([s for _, s in parts])
        return [_reframe(box) for box in _blend(boxes, scores)]

    def _detect_view(self, gray: np.ndarray, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw boxes (K, 4) as x0, y0, x1, y1 in the full image, and their logits (K,)."""
        h, w = gray.shape
        s = self.size
        scale = s / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA)  # antialiased downscale
        ox, oy = (s - nw) // 2, (s - nh) // 2
        canvas = np.full((1, 3, s, s), -1.0, dtype=np.float32)  # (1, 3, 128, 128), padding = black
        canvas[0, :, oy:oy + nh, ox:ox + nw] = small * np.float32(2.0 / 255.0) - np.float32(1.0)  # grey → R=G=B
        regressors, logits = self.session.run(["regressors", "classificators"], {"input": canvas})
        logits = logits[0, :, 0]  # (896,)
        keep = np.flatnonzero(logits >= self._min_logit)
        if keep.size == 0:
            return np.empty((0, 4), np.float32), np.empty((0,), np.float32)
        reg = regressors[0, keep, :4] / self.box_scale  # (K, 4): dx, dy, w, h in [0, 1] of the square
        cx = reg[:, 0] + self.anchors[keep, 0]
        cy = reg[:, 1] + self.anchors[keep, 1]
        boxes = np.stack([cx - reg[:, 2] / 2, cy - reg[:, 3] / 2, cx + reg[:, 2] / 2, cy + reg[:, 3] / 2], axis=1) * s
        boxes -= np.array([ox, oy, ox, oy], np.float32)  # square → view pixels at `scale`
        boxes /= scale
        boxes += np.array([dx, dy, dx, dy], np.float32)
        return boxes, logits[keep]


def _reframe(box: np.ndarray) -> Box:
    """BlazeFace (x0, y0, x1, y1) → Haar-like (x, y, w, h); see FRAME_SCALE.

    >>> _reframe(np.array([100.0, 100.0, 192.0, 192.0]))
    (94, 84, 100, 100)
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = (x1 - x0) * FRAME_SCALE, (y1 - y0) * FRAME_SCALE
    cx = (x0 + x1) / 2 + FRAME_SHIFT[0] * w
    cy = (y0 + y1) / 2 + FRAME_SHIFT[1] * h
    return round(cx - w / 2), round(cy - h / 2), round(w), round(h)


def _blend(boxes: np.ndarray, scores: np.ndarray) -> list[np.ndarray]:
    """Weighted NMS: each group of boxes overlapping the best remaining one becomes their weighted mean.

    >>> b = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    >>> [m.round(1).tolist() for m in _blend(b, np.array([3.0, 1.0, 2.0]))]
    [[0.4, 0.4, 10.4, 10.4], [50.0, 50.0, 60.0, 60.0]]
    """
    if len(boxes) == 0:
        return []
    weights = 1.0 / (1.0 + np.exp(-scores.astype(np.float64)))  # logits → probabilities
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    free = np.ones(len(boxes), bool)
    merged = []
    for i in np.argsort(-weights):
        if not free[i]:
            continue
        x0 = np.maximum(boxes[i, 0], boxes[:, 0])
        y0 = np.maximum(boxes[i, 1], boxes[:, 1])
        x1 = np.minimum(boxes[i, 2], boxes[:, 2])
        y1 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        group = free & (inter / (area[i] + area - inter + 1e-9) > NMS_IOU)
        free &= ~group
        w = weights[group][:, None]
        merged.append((boxes[group] * w).sum(axis=0) / w.sum())
    return merged
