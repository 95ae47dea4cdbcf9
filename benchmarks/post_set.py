"""A seeded set of realistic image posts, built offline from scikit-image's bundled photographs.

Faces: the astronaut (a real photo, face about a quarter of the frame) and the 100 LFW face crops of
``skimage.data.lfw_subset()`` (25x25 px, tight: brow to chin), each upscaled and pasted on a patch of
one of skimage's photographs (coffee, rocket, horse, ...) at a random place, with its side drawn from
``face_fraction`` of the picture's shorter side. No-face posts are patches of the same photographs
(and of the cat, which is a face but not a human one). Every post is encoded as a phone would send it:

- ``jpeg1080``: 1080x1080 JPEG, quality 85 (what a feed app uploads);
- ``jpeg4000``: 4000x3000 JPEG, quality 85 (a camera original);
- ``png``: 800x600 PNG (a screenshot).

The same ``seed`` gives the same bytes, so detector recall and the load benchmark are repeatable.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter
from skimage import data as skdata

SIZES = {"jpeg1080": (1080, 1080), "jpeg4000": (4000, 3000), "png": (800, 600)}
BACKGROUNDS = ("coffee", "rocket", "horse", "hubble_deep_field", "retina", "immunohistochemistry",
               "coins", "grass", "gravel", "brick", "page", "text", "clock", "moon", "colorwheel")
NO_FACE_EXTRA = ("chelsea",)  # a cat: the detector must not call it a human face


@dataclass(frozen=True)
class Post:
    data: bytes
    kind: str  # "jpeg1080" | "jpeg4000" | "png"
    face: tuple[int, int, int, int] | None  # where the face was pasted (x, y, w, h); None: no face
    source: str  # "lfw:<i>", "astronaut", or "<background>" for no-face posts


@lru_cache(maxsize=None)
def _photo(name: str) -> Image.Image:
    pixels = getattr(skdata, name)()
    if pixels.dtype != np.uint8:
        pixels = (pixels * 255 / max(1, pixels.max())).astype(np.uint8)
    img = Image.fromarray(pixels)
    return img.convert("RGB")


def _background(rng: np.random.Generator, names: tuple[str, ...], size: tuple[int, int]) -> tuple[Image.Image, str]:
    name = names[int(rng.integers(len(names)))]
    photo = _photo(name)
    # a random crop of at least half the photo, stretched to the post's size (a blurry backdrop)
    cw = int(photo.width * rng.uniform(0.5, 1.0))
    ch = int(photo.height * rng.uniform(0.5, 1.0))
    x, y = int(rng.integers(0, photo.width - cw + 1)), int(rng.integers(0, photo.height - ch + 1))
    return photo.resize(size, Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch)), name


def _lfw_face(index: int, side: int) -> Image.Image:
    pixels = (skdata.lfw_subset()[index] * 255).round().astype(np.uint8)  # (25, 25) in [0, 1]
    face = Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC)
    return face.filter(ImageFilter.GaussianBlur(side / 200)).convert("RGB")  # soften the 25 px blocks


def _encode(img: Image.Image, kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == "png":
        img.save(buf, "PNG", compress_level=6)
    else:
        img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def face_post(index: int, kind: str = "jpeg1080", *, seed: int = 0,
              face_fraction: tuple[float, float] = (0.25, 0.5)) -> Post:
    """LFW face ``index`` (0-99; -1: the astronaut) in a post of ``kind``."""
    rng = np.random.default_rng([seed, index + 1, list(SIZES).index(kind)])
    size = SIZES[kind]
    canvas, _ = _background(rng, BACKGROUNDS, size)
    if index < 0:  # the astronaut photo is its own background: scale it to cover the canvas
        photo = _photo("astronaut")
        scale = max(size) / 512 * rng.uniform(1.0, 1.3)
        big = photo.resize((round(512 * scale), round(512 * scale)), Image.Resampling.BILINEAR)
        ox, oy = int(rng.integers(0, big.width - size[0] + 1)), int(rng.integers(0, big.height - size[1] + 1))
        canvas = big.crop((ox, oy, ox + size[0], oy + size[1]))
        x0, y0, x1, y1 = (v * scale for v in (160, 50, 290, 190))
        face = (round(x0 - ox), round(y0 - oy), round(x1 - x0), round(y1 - y0))
        return Post(_encode(canvas, kind), kind, face, "astronaut")
    side = round(min(size) * rng.uniform(*face_fraction))
    x, y = int(rng.integers(0, size[0] - side + 1)), int(rng.integers(0, size[1] - side + 1))
    canvas.paste(_lfw_face(index, side), (x, y))
    return Post(_encode(canvas, kind), kind, (x, y, side, side), f"lfw:{index}")


def no_face_post(index: int, kind: str = "jpeg1080", *, seed: int = 0) -> Post:
    rng = np.random.default_rng([seed, 1000 + index, list(SIZES).index(kind)])
    canvas, name = _background(rng, BACKGROUNDS + NO_FACE_EXTRA, SIZES[kind])
    return Post(_encode(canvas, kind), kind, None, name)


def face_posts(kind: str = "jpeg1080", *, seed: int = 0, n: int = 100) -> list[Post]:
    """The astronaut, then LFW faces 0..n-2 (at most 101 posts)."""
    return [face_post(-1, kind, seed=seed)] + [face_post(i, kind, seed=seed) for i in range(min(n, 101) - 1)]


def no_face_posts(kind: str = "jpeg1080", *, seed: int = 0, n: int = 40) -> list[Post]:
    return [no_face_post(i, kind, seed=seed) for i in range(n)]
