"""``python -m benchmarks.faces``: the fast face detector against the Haar reference on the post set.

For each kind of post (benchmarks/post_set.py) and each detector: faces found, missed, false boxes
(boxes not on the pasted face, on face and no-face posts alike), no-face posts with any box, and the
detector's own time per image (decode excluded), on one thread. A face counts as found when a box's
centre lies inside the pasted face and its side is within 0.3..2x the face's.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from benchmarks import post_set
from service import model_repository
from service.config import Settings
from service.faces import BlazeFaceDetector
from service.images import Detector, FaceDetector, decode_gray


@dataclass
class Recall:
    detector: str
    kind: str
    faces: int
    found: int
    false_boxes: int
    no_face_posts: int
    no_face_hits: int
    ms_per_image: float

    @property
    def missed(self) -> int:
        return self.faces - self.found


def _on_face(box: tuple[int, int, int, int], face: tuple[int, int, int, int], scale: float) -> bool:
    x, y, w, h = box
    fx, fy, fw, fh = (v * scale for v in face)
    cx, cy = x + w / 2, y + h / 2
    return fx < cx < fx + fw and fy < cy < fy + fh and 0.3 * fw < max(w, h) < 2.0 * fw


def evaluate(detector: Detector, posts: list[post_set.Post]) -> Recall:
    found = false = no_face = hits = 0
    seconds = 0.0
    for post in posts:
        gray, source = decode_gray(post.data, max_pixels=40_000_000)
        pixels = np.asarray(gray)
        started = time.perf_counter()
        boxes = detector.detect(pixels)
        seconds += time.perf_counter() - started
        if post.face is None:
            no_face += 1
            hits += bool(boxes)
            false += len(boxes)
            continue
        on = [b for b in boxes if _on_face(b, post.face, gray.width / source[0])]
        found += bool(on)
        false += len(boxes) - min(1, len(on))
    return Recall(detector.name, posts[0].kind, len(posts) - no_face, found, false, no_face, hits,
                  1e3 * seconds / len(posts))


def detectors() -> list[Detector]:
    return [BlazeFaceDetector(model_repository.load(Settings().model_repository, "face_detector")), FaceDetector()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faces", description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(post_set.SIZES), choices=list(post_set.SIZES))
    args = parser.parse_args(argv)
    print("| posts | detector | faces found | missed | false boxes | no-face posts with a box | ms / image |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.kinds:
        posts = post_set.face_posts(kind) + post_set.no_face_posts(kind)
        for det in detectors():
            r = evaluate(det, posts)
            print(f"| {kind} | {r.detector} | {r.found}/{r.faces} | {r.missed} | {r.false_boxes} | "
                  f"{r.no_face_hits}/{r.no_face_posts} | {r.ms_per_image:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
