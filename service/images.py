"""Image bytes → one 64x64 grayscale face crop, the emotion CNN's input.

Untrusted bytes go through, in order: a byte limit, a magic-byte format sniff (JPEG, PNG, WebP,
GIF, BMP only), a pixel-count limit read from the header *before* any pixel is decoded
(decompression bombs; a JPEG's counts the pixels its reduced decode holds, and libjpeg's own buffers are
bounded by ``bound_jpeg_memory``), a reduced-size decode (JPEG DCT scaling), EXIF orientation, one grayscale
conversion, face detection (``service.faces.BlazeFaceDetector`` in the service; the Haar cascade
here is the slow reference it was measured against), and a square crop with a margin resized to 64x64.

Every failure is a domain error from :mod:`service.errors`:

- ``UnsupportedImage`` (415): not one of the allowed formats.
- ``ImageTooLarge`` (413): too many bytes, or a header that claims too many pixels.
- ``CorruptImage`` (422): the format is right but the data does not decode (truncated, broken).
- ``ImageTooComplex`` (422): the work to decode it is out of proportion to its size, counted from
  its structure before decoding: a JPEG with more scans than ``max_jpeg_scans``, or more passes (its
  scans' components) times pixels than ``max_jpeg_scan_pixels`` (each pass makes libjpeg go over every
  block of its component again),
  or a PNG with more chunks, a GIF with more blocks before its first frame, or a JPEG with more
  segments and fill or junk bytes, than ``max_image_chunks`` (Pillow reads each in Python, holding the
  interpreter lock). What small hostile files of each kind cost before these bounds: docs/limits.md.
"""

from __future__ import annotations

import io
import os
import re
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Protocol

import cv2
import cv2.data  # the cascade files; cv2's stubs leave the submodule out of the package
import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from service.errors import CorruptImage, ImageTooComplex, ImageTooLarge, UnsupportedImage

CROP_SIZE = 64  # the CNN's input side
# JPEG draft target: libjpeg scales by 1/2, 1/4 or 1/8 while decoding, and Pillow picks the
# largest factor that keeps *both* sides >= this. 320 keeps the shorter side >= 320 px, so the
# detection copy (DETECT_SIDE) is always a downscale and a face a fifth of the shorter side still
# has >= 64 px for the crop (no upsampling); a 4000x3000 photo decodes at 500x375 (1/64 the pixels).
DRAFT_SIDE = 320
# Haar runs on a copy whose longest side is this: its cost grows with pixels (per size:
# docs/performance.md). With min_size 24 (the cascade's window) the smallest face found is 9%
# of the longest side: the astronaut padded to 1024x512 (face 10%) is still found.
DETECT_SIDE = 270
# Margin added on each side of the detected box, as a fraction of its side. Haar boxes run from
# brow to chin; FER-2013 crops (the CNN's training data) also show the forehead and jaw line.
MARGIN = 0.2

# Magic bytes → Pillow format name. Sniffing ourselves (rather than trusting Pillow's plugin
# search, which knows ~40 formats) keeps the attack surface to five well-worn decoders.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"WEBP", 8, "WEBP"),  # RIFF....WEBP: checked together with the RIFF tag below
)
# What decoders raise on broken data: OSError (truncated, decoder error; UnidentifiedImageError
# is a subclass), SyntaxError (PNG/GIF chunk parsers), ValueError, EOFError, struct/zlib errors.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)
# Pillow refuses a header past this inside Image.open (its DecompressionBombError), before ours is asked
_PILLOW_BOMB_PIXELS = 2 * (Image.MAX_IMAGE_PIXELS or 0) or 2 ** 63
# ... and warns past half of it: our own checks follow open() at once, so the warning says nothing (a JPEG
# camera photo may have up to the guard's pixels: _check_reduced)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# "<_io.BytesIO object at 0x7f...>" in a decoder's message: an address, nothing a client can act on
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


@dataclass(frozen=True)
class FaceCrop:
    pixels: np.ndarray  # (64, 64) float32, (x / 255 - 0.5) * 2, in [-1, 1]
    face_detected: bool
    box: tuple[int, int, int, int] | None  # x, y, w, h of the face in the upright original image
    source_size: tuple[int, int]  # (width, height) of the upright original image


class Detector(Protocol):
    """What ``prepare`` and ``Pipeline`` need of a face detector: ``service.faces.BlazeFaceDetector``
    (the service's default) and the Haar ``FaceDetector`` below both satisfy it."""

    name: str

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, w, h) in the coordinates of ``gray``, an (H, W) uint8 image."""
        ...


class FaceDetector:
    """OpenCV's frontal-face Haar cascade (the slow reference, not the service's default; docs/performance.md).

    Build once, call from any thread; it detects on a copy whose longest side is ``DETECT_SIDE``.

    ``CascadeClassifier`` keeps per-call scratch state (its feature evaluator), so one instance
    must not run ``detectMultiScale`` in two threads at once: each thread gets its own copy.
    """

    name = "opencv-haar-frontalface"

    def __init__(
        self,
        cascade_path: str | None = None,
        *,
        scale_factor: float = 1.1,  # fer's default; 1.2 was faster but missed more faces (docs/performance.md)
        min_neighbors: int = 5,  # fer's default; fewer gave false faces on skimage's textures
        min_size: int = 24,  # px at DETECT_SIDE: the cascade's window, nothing smaller is seen
    ) -> None:
        if scale_factor <= 1.0 or min_neighbors < 0 or min_size < 1:
            raise ValueError("need scale_factor > 1, min_neighbors >= 0, min_size >= 1")
        self.cascade_path = cascade_path or os.path.join(
            cv2.data.haarcascades, "haarcascade_frontalface_default.xml"
        )
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        # Parallelism comes from the decode worker threads; OpenCV's own pool would oversubscribe the cores.
        cv2.setNumThreads(1)
        self._local = threading.local()
        self._classifier()  # fail at start-up, not on the first request, if the file is missing

    def _classifier(self) -> cv2.CascadeClassifier:
        classifier = getattr(self._local, "classifier", None)
        if classifier is None:
            classifier = cv2.CascadeClassifier(self.cascade_path)
            if classifier.empty():
                raise RuntimeError(f"cannot load Haar cascade {self.cascade_path!r}")
            self._local.classifier = classifier
        return classifier

    def detect(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (x, y, w, h) in ``gray``'s coordinates; ``gray`` is (H, W) uint8."""
        # Detect on a small copy: Haar's cost is linear in pixels and faces worth classifying are big.
        scale = min(1.0, DETECT_SIDE / max(gray.shape))
        small = Image.fromarray(gray)
        if scale < 1.0:
            size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
            small = small.resize(size, Image.Resampling.BILINEAR)
        boxes = self._classifier().detectMultiScale(
            np.asarray(small),
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        sx, sy = gray.shape[1] / small.width, gray.shape[0] / small.height
        return [(round(x * sx), round(y * sy), round(w * sx), round(h * sy)) for x, y, w, h in boxes]


def sniff_format(data: bytes) -> str:
    """The Pillow format name for the allowed formats' magic bytes, else ``UnsupportedImage``.

    >>> sniff_format(b"\\x89PNG\\r\\n\\x1a\\n...")
    'PNG'
    >>> sniff_format(b"RIFF\\x00\\x00\\x00\\x00WEBPVP8 ")
    'WEBP'
    >>> sniff_format(b"%PDF-1.7")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    service.errors.UnsupportedImage: not a JPEG, PNG, WebP, GIF or BMP image
    """
    for magic, offset, fmt in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (fmt != "WEBP" or data[:4] == b"RIFF"):
            return fmt
    raise UnsupportedImage("not a JPEG, PNG, WebP, GIF or BMP image")


# After a scan header, its entropy-coded data runs to the next marker: 0xFF followed by anything but a
# stuffed 0x00, a restart marker (D0-D7) or another fill 0xFF.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0-7, SOI: no length field
# any marker, between segments: libjpeg skips other bytes there (a warning only) to the next one
_ANY_MARKER = re.compile(rb"\xff[^\x00\xff]")


# The frames libjpeg decodes that cameras, phones and browsers use: Huffman-coded baseline (SOF0), extended
# (SOF1) and progressive (SOF2). Arithmetic-coded ones pack a whole image's near-certain decisions into a
# kilobyte that takes seconds to decode (an audit: 1 KB, 13 scans of 6000x6000, 4.2 s of CPU).
_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2})
_PROGRESSIVE = 0xC2
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-15 (not DHT, JPG, DAC)
# every marker libjpeg reads between segments: frames, DHT, DAC, DQT, DNL, DRI, APPn, COM, and the standalone
# ones. Reserved markers, JPG and JPGn it refuses there and takes inside a scan only to resync at a restart;
# read with a length, one hid the scans after it, which that resync decodes (docs/limits.md)
_SEGMENTS = _FRAMES | {0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD, 0xD9, 0xFE, *range(0xE0, 0xF0)} | {0x01, *range(0xD0, 0xD9)}


@dataclass(frozen=True)
class JpegWalk:
    scans: int  # SOS segments
    passes: int  # their components, summed: an interleaved scan goes over each of its components' blocks
    frame: int | None  # the first SOFn marker: how the image is coded
    reserved: int | None = None  # the first marker libjpeg takes nowhere between segments (refused)
    # segments, fill bytes and junk bytes walked (Pillow parses each in Python until the first scan)
    steps: int = field(default=0, compare=False, repr=False)


def walk_jpeg(data: bytes, limit: int, max_steps: int = 10_000) -> JpegWalk:
    """A JPEG's scans, their components and its frame kind, walking its markers without decoding; stops
    counting past ``limit`` scans or ``max_steps`` steps (a segment, a fill or junk byte: Pillow's parser
    takes each in a turn of Python, 19 MiB of them 6-12 s of CPU: an audit). Junk between segments is
    skipped to the next marker, as libjpeg does (30 scans were hidden behind one byte: an audit); a marker
    libjpeg reads nowhere between segments stops the walk and is named (``reserved``).

    >>> walk_jpeg(bytes.fromhex("ffd8 ffc00002 ffda0003 03 0102ff00 ffda0003 01 03 ffd9"), 10)
    JpegWalk(scans=2, passes=4, frame=192, reserved=None)
    >>> walk_jpeg(bytes.fromhex("ffd8 ffc00002 ffda0003 01 01 ff02ffff ffda0003 01 01 ffd9"), 10).reserved
    2
    >>> walk_jpeg(bytes.fromhex("ffd8 00 ffda0003 01 0102ff00 ffda0003 01 03 ffd9"), 10).scans
    2
    >>> walk_jpeg(bytes.fromhex("ffd8 ff00ffff 0000 ffc00002 ffda0003 01 01 ffd9"), 10)
    JpegWalk(scans=1, passes=1, frame=192, reserved=None)
    """
    pos, scans, passes, frame, end, steps = 2, 0, 0, None, len(data), 0
    while pos + 4 <= end and scans <= limit and steps <= max_steps:
        steps += 1
        if data[pos] != 0xFF:
            found = _ANY_MARKER.search(data, pos)
            if found is None:
                break
            steps, pos = steps + found.start() - pos, found.start()
            continue
        marker = data[pos + 1]
        if marker in (0xFF, 0x00):  # a fill byte; FF 00 is no marker (libjpeg and Pillow discard it: read
            pos += 1 if marker == 0xFF else 2  # as one, with a length, it hid every scan: an audit)
            continue
        if marker not in _SEGMENTS:  # hid the scans after it, which libjpeg's restart recovery decodes
            return JpegWalk(scans, passes, frame, marker, steps)
        if marker == 0xD9:  # EOI
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        if frame is None and marker in _FRAMES:
            frame = marker
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # SOS: its header (the components first), then entropy-coded data to the next marker
            scans += 1
            passes += max(1, data[pos + 4]) if pos + 4 < end else 1
            found = _NEXT_MARKER.search(data, pos + 2 + length)
            if found is None:
                break
            pos = found.start()
            continue
        pos += 2 + length
    return JpegWalk(scans, passes, frame, None, steps)


def count_png_chunks(data: bytes, limit: int) -> int:
    """How many chunks a PNG holds, walking their length fields; stops counting past ``limit``.

    >>> ihdr = (13).to_bytes(4, "big") + b"IHDR" + bytes(13) + bytes(4)
    >>> count_png_chunks(b"\\x89PNG\\r\\n\\x1a\\n" + ihdr + bytes(4) + b"IEND" + bytes(4), 10)
    2
    """
    pos, chunks, end = 8, 0, len(data)
    while pos + 8 <= end and chunks <= limit:
        chunks += 1
        if data[pos + 4:pos + 8] == b"IEND":
            break
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")  # length, type, data, CRC
    return chunks


def count_gif_blocks(data: bytes, limit: int) -> int:
    """How many extension blocks and sub-blocks a GIF holds before its first image; stops counting past
    ``limit``. (The image's own data goes to Pillow's C decoder.)

    >>> head = b"GIF89a" + bytes(7)  # no global colour table
    >>> count_gif_blocks(head + b"\\x21\\xfe\\x01x\\x00" * 3 + b"\\x2c", 100)
    6
    """
    pos, blocks, end = 13, 0, len(data)
    if end > 10 and data[10] & 0x80:  # a global colour table follows the screen descriptor
        pos += 3 * 2 ** ((data[10] & 7) + 1)
    while pos + 2 <= end and blocks <= limit and data[pos] == 0x21:  # an extension (0x2C: the image)
        pos += 2  # introducer, label
        while pos < end and blocks <= limit:
            size = data[pos]
            pos += 1 + size
            blocks += 1
            if size == 0:
                break
    return blocks


def prepare(data: bytes, *, max_bytes: int, max_pixels: int, detector: Detector,
            max_jpeg_scans: int = 100, max_jpeg_scan_pixels: int = 600_000_000,
            max_image_chunks: int = 10_000) -> FaceCrop:
    """Validate and decode ``data``, find the largest face and return its 64x64 crop.

    With no face, the centre square of the image is used and ``face_detected`` is False.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image is {len(data)} bytes; the limit is {max_bytes} (EMODRIFT_MAX_IMAGE_BYTES)")
    gray, source_size = decode_gray(data, max_pixels=max_pixels, max_jpeg_scans=max_jpeg_scans,
                                    max_jpeg_scan_pixels=max_jpeg_scan_pixels, max_image_chunks=max_image_chunks)

    boxes = detector.detect(np.asarray(gray))  # each detector shrinks to the size it works at

    if boxes:
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        x0, y0 = max(0.0, float(x)), max(0.0, float(y))  # a learned detector's box may overhang the edge
        face = (x0, y0, min(float(x + w), gray.width) - x0, min(float(y + h), gray.height) - y0)
        crop_box = _square_around(face, gray.size, MARGIN)
        ox, oy = source_size[0] / gray.width, source_size[1] / gray.height  # decoded → original
        box = (round(face[0] * ox), round(face[1] * oy), round(face[2] * ox), round(face[3] * oy))
    else:
        side = min(gray.size)
        left, top = (gray.width - side) / 2, (gray.height - side) / 2
        crop_box = (left, top, left + side, top + side)
        box = None

    # resize(box=...) crops and resamples in one pass, with sub-pixel edges; BICUBIC with
    # Pillow's support scaling is an antialiased downscale (cv2.resize would alias).
    face_img = gray.resize((CROP_SIZE, CROP_SIZE), Image.Resampling.BICUBIC, box=crop_box)
    pixels = np.asarray(face_img, dtype=np.float32)  # (64, 64)
    pixels = (pixels / 255.0 - 0.5) * 2.0  # the scaling mini-Xception was trained with
    return FaceCrop(pixels=pixels, face_detected=box is not None, box=box, source_size=source_size)


def decode_gray(data: bytes, *, max_pixels: int, max_jpeg_scans: int = 100, max_jpeg_scan_pixels: int = 600_000_000,
                max_image_chunks: int = 10_000) -> tuple[Image.Image, tuple[int, int]]:
    """An upright 'L' image (JPEG: reduced, see DRAFT_SIDE) and the upright original's (w, h).

    Raises ``UnsupportedImage``, ``ImageTooLarge`` (pixel count), ``ImageTooComplex`` (JPEG scans, alone
    or times pixels, PNG chunks, GIF blocks) or ``CorruptImage``.
    """
    fmt = sniff_format(data)
    walk = _check_structure(data, fmt, max_jpeg_scans, max_image_chunks)
    try:
        # formats=[fmt]: only the sniffed plugin may parse these bytes.
        img: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = img.size  # from the header: nothing decoded yet
        _check_header(img, fmt, walk, max_pixels, max_jpeg_scan_pixels, data)
        declared = _transparent(img)
        img.load()  # GIF / APNG: Pillow opens on the first frame, which is what we use
        if not declared:  # a tRNS after the image data (the spec puts it before) was never counted: ignored
            img.info.pop("transparency", None)
        _eight_bit_key(img)
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        gray = _upright_grey(img, orientation)
    except Image.DecompressionBombError as exc:
        # Pillow's own guard, hit inside open() before the size can be read; its words name its limit. It is
        # the only bound of a JPEG's header (_check_reduced counts what its decode holds)
        if fmt == "JPEG":
            raise ImageTooLarge(f"JPEG's header claims over {_PILLOW_BOMB_PIXELS} pixels; the limit is "
                                f"{_PILLOW_BOMB_PIXELS} for a JPEG (its reduced decode counts against "
                                f"EMODRIFT_MAX_IMAGE_PIXELS, {max_pixels})") from exc
        raise ImageTooLarge(f"image's header claims over {min(max_pixels, _PILLOW_BOMB_PIXELS)} pixels; "
                            f"the limit is {max_pixels}") from exc
    except UnidentifiedImageError as exc:
        # the sniffed format's plugin refused the header; Pillow's message names the BytesIO object
        raise CorruptImage(f"cannot decode {fmt} image: its header is not valid (a width or height of 0, "
                           "or a broken header)") from exc
    except MemoryError as exc:
        # Pillow refuses to set up a decoder whose row is past what its C code can index (a 16-bit RGBA PNG of 40
        # Mpx x 1): a 500 and a traceback a post, before this answer (a re-audit)
        raise ImageTooLarge(f"cannot decode {fmt} image: its rows are too long for the decoder (send it smaller, or as "
                            "a JPEG)") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImage(f"cannot decode {fmt} image: {_OBJECT_REPR.sub('the image', str(exc))}") from exc
    # Orientations 5-8 turn the picture a quarter: the upright original has its sides swapped.
    source_size = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return gray, source_size


def _upright_grey(img: Image.Image, orientation: int) -> Image.Image:
    """Grey first, then reduced, then turned upright: every copy after the decode is one byte a pixel, and the
    later ones a fraction of it (RGBA and 16-bit grey took 16-25 bytes a pixel, ~1 GB at 40 Mpx)."""
    gray = _reduced(_to_gray(img))
    if orientation in _TRANSPOSE:
        if gray is not img:
            img.close()  # the decode freed before its grey is turned: a strip too narrow to reduce held three
        gray = gray.transpose(_TRANSPOSE[orientation])  # full-size copies at once (6.4 B/px: a re-audit)
    return gray


def _check_header(img: Image.Image, fmt: str, walk: JpegWalk, max_pixels: int, max_jpeg_scan_pixels: int,
                  data: bytes) -> None:
    """The checks of what the header says, before anything is decoded: pixels (a long thin image's rows and
    columns too; a WebP's counted more, and a lossless-coded one's decoder tables: their decode peaks higher;
    a JPEG's as its reduced decode holds them), a JPEG's structure and coefficients (then its draft), an RLE BMP."""
    width, height = img.size
    if fmt != "JPEG" and width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} pixels; the limit is {max_pixels} (EMODRIFT_MAX_IMAGE_PIXELS): "
                            "send it smaller")
    if fmt != "JPEG" and min(width, height) < THIN_SIDE and width * height + LINE_COST * (width + height) > max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} pixels: so long and thin that its rows and columns cost more "
                            f"than its pixels (each counts {LINE_COST} pixels more against the limit of {max_pixels}, "
                            "EMODRIFT_MAX_IMAGE_PIXELS): send it cropped or smaller")
    if fmt == "WEBP" and width * height * WEBP_COST > max_pixels:
        raise ImageTooLarge(f"WebP image is {width}x{height} pixels; the limit is {int(max_pixels / WEBP_COST)} "
                            f"for WebP, which decodes through two full-size buffers")
    if fmt == "WEBP" and (coded := webp_lossless_bytes(data)):
        _check_webp_tables(width, height, coded, max_pixels)
    if fmt == "JPEG":
        _check_jpeg(img, walk, max_pixels, max_jpeg_scan_pixels)
        # Must precede load(): libjpeg decodes straight to grayscale at 1/2..1/8 scale.
        img.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
        _check_reduced(img, (width, height), max_pixels)
    if fmt == "BMP" and img.info.get("compression") in _BMP_RLE:
        # Pillow decodes RLE bitmaps in Python, a loop per pixel: a 1 KB file claiming 39 Mpx took
        # 4.7 s of CPU holding the interpreter lock (docs/limits.md). Cameras and phones write none.
        raise UnsupportedImage("BMP with RLE compression is not taken; send it as PNG or JPEG")


# EXIF orientation -> the transposition that makes the picture upright (as ImageOps.exif_transpose)
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}
# The bytes a pixel the pixel limit stands for: what a PNG, GIF or BMP decode peaks at (docs/limits.md).
DECODE_BYTES = 6
# A WebP decodes through libwebp's buffer and Pillow's copy: ~15 bytes a pixel at its peak, so its pixels
# count this many times against the pixel limit.
WEBP_COST = 2.5
# What a row and a column cost beyond their pixels, in pixels of the limit: Pillow keeps a pointer a row of each
# full-size copy (8 bytes), and the PNG decoder two buffers of a raw row (up to 8 bytes a pixel each). A 1 x 40
# Mpx RGBA PNG took 21 bytes a pixel and a 40 Mpx x 1 16-bit one 16 (a re-audit); counted 5 pixels each, at 6
# bytes a pixel, they stay within what the limit stands for (at 3, a 1 x 4 Mpx one took all of it at 16 Mpx:
# the tiles' own buffers). Counted only below THIN_SIDE: past it they add under 0.5 bytes a pixel, within the
# slack of the 6, and an image at the limit stays taken whatever its shape.
LINE_COST = 4
THIN_SIDE = 64
# A lossless-coded WebP (VP8L; a lossy one's alpha, ALPH, is coded so too) names up to a prefix-code group per
# 4x4 block, each at least 20 bits of the file (five one-symbol codes), and libwebp builds its tables for each:
# a re-audit's 352 KB file of 1 Mpx, 65 536 groups, took +366 MiB. Bytes a group may cost (measured: 5.9 KB).
WEBP_GROUP_BYTES = 6000
WEBP_GROUPS_PER_BYTE = 8 / 20
_WEBP_LOSSLESS_CHUNKS = frozenset({b"VP8L", b"ALPH", b"ANMF"})  # an animation's frames may be either: counted so
# A progressive JPEG's coefficient buffer: bytes a pixel of each full-resolution component (_check_coefficients).
COEFFICIENT_BYTES = 2
# libjpeg's tables and row buffers past its coefficient buffers, allowed by bound_jpeg_memory (docs/limits.md)
JPEG_WORKING_BYTES = 16 * 2**20
_BMP_RLE = (1, 2)  # BI_RLE8, BI_RLE4 (the header's compression field, as Pillow's BMP plugin reads it)
_CHUNK = 1 << 18  # pixels a tile of a 16-bit or transparent image: the temporaries of each stay a few MB


def _check_webp_tables(width: int, height: int, size: int, max_pixels: int) -> None:
    """ImageTooLarge when a lossless-coded WebP's decoder tables, at the most groups its blocks and its ``size``
    lossless-coded bytes allow, and its buffers (WEBP_COST) may need more than the decode budget (docs/limits.md)."""
    groups = min(-(-width // 4) * -(-height // 4), int(size * WEBP_GROUPS_PER_BYTE))
    needed, budget = groups * WEBP_GROUP_BYTES + width * height * WEBP_COST * DECODE_BYTES, DECODE_BYTES * max_pixels
    if needed > budget:
        raise ImageTooLarge(f"lossless or transparent WebP image of {width}x{height} pixels ({size} bytes lossless-coded) may need "
                            f"{needed / 2**20:.0f} MiB to decode (its decoder builds tables for up to a code group per "
                            f"4x4 block, as many as its bytes can name); the decode budget is {budget / 2**20:.0f} MiB "
                            f"(EMODRIFT_MAX_IMAGE_PIXELS x {DECODE_BYTES} bytes): send it as PNG, or smaller")


def webp_lossless_bytes(data: bytes) -> int:
    """The bytes of a WebP's lossless-coded data (VP8L, an alpha plane, animation frames), 0 for none: its
    top-level chunks, walked by their sizes (a real file has a handful; past 64, the rest of the file counts).

    >>> webp_lossless_bytes(b"RIFF\\x16\\x00\\x00\\x00WEBPVP8L\\x02\\x00\\x00\\x00\\x2f\\x00")
    2
    >>> webp_lossless_bytes(b"RIFF\\x16\\x00\\x00\\x00WEBPVP8 \\x02\\x00\\x00\\x00\\x00\\x00")
    0
    """
    pos, chunks, coded = 12, 0, 0
    while pos + 8 <= len(data):
        if chunks == 64:
            return coded + len(data) - pos
        kind, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if kind in _WEBP_LOSSLESS_CHUNKS:
            coded += min(size, len(data) - pos - 8)
        pos, chunks = pos + 8 + size + (size & 1), chunks + 1
    return coded


def _check_passes(width: int, height: int, passes: int, max_jpeg_scan_pixels: int) -> None:
    """ImageTooComplex when a JPEG's passes (its scans' components) times its pixels pass the bound:
    libjpeg's reduced decode scales the last step only, each pass still reads every block of its
    component over the full image (docs/limits.md)."""
    if passes * width * height > max_jpeg_scan_pixels:
        raise ImageTooComplex(f"JPEG of {width}x{height} pixels in {passes} passes (its scans' components): "
                              f"{passes} x {width * height / 1e6:.1f} Mpx; the limit is {max_jpeg_scan_pixels / 1e6:.0f} "
                              "Mpx in all passes (send it with fewer scans, or smaller)")


def _transparent(img: Image.Image) -> bool:
    """Does the image carry transparency (an alpha band, or a transparent colour or palette entry)?"""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _check_jpeg(img: Image.Image, walk: JpegWalk, max_pixels: int, max_jpeg_scan_pixels: int) -> None:
    """The JPEG checks that need its header: its structure read (a walk that found no frame or no scan
    disagrees with the decoder, which found both: fail closed), its passes over the pixels, and its
    coefficients when libjpeg buffers them all (a progressive frame, more than one scan, or a first scan
    without every component)."""
    if walk.frame is None or walk.scans == 0:
        raise CorruptImage("cannot decode JPEG image: its frame and scans could not be read before decoding "
                           "(bytes between its segments that no encoder writes)")
    _check_passes(*img.size, walk.passes, max_jpeg_scan_pixels)
    if walk.frame == _PROGRESSIVE or walk.scans > 1 or walk.passes < len(img.getbands()):
        _check_coefficients(img, max_pixels)


def _check_reduced(img: Image.Image, size: tuple[int, int], max_pixels: int) -> None:
    """ImageTooLarge when a JPEG, drafted, still decodes to more pixels than the pixel limit. libjpeg's
    reduced decode holds only its output and a row of blocks (its coefficient buffers, when it keeps
    them all, are ``_check_coefficients``'s): a 40 Mpx camera photo decodes at 1/8 a side, 0.6 Mpx, so
    the limit counts those pixels, not the header's. A strip too narrow to reduce decodes at full size."""
    if img.width * img.height > max_pixels:
        raise ImageTooLarge(f"JPEG of {size[0]}x{size[1]} pixels decodes at {img.width}x{img.height} even reduced; the "
                            f"limit is {max_pixels} pixels decoded (EMODRIFT_MAX_IMAGE_PIXELS): send it smaller")


def bound_jpeg_memory(max_pixels: int) -> None:
    """libjpeg's own bound on the coefficient buffers it allocates (``JPEGMEM``, read by libjpeg-turbo at
    each decode), set to the decode budget ``_check_coefficients`` counts against, with room for its row
    buffers: a JPEG whose structure hid from the walk what it buffers (each image audit found such a
    file) fails to decode instead of taking memory past the budget. Process-wide, read by decoder threads
    without the interpreter lock: call it before any decode thread runs (``Pipeline`` does)."""
    kilobytes = str((DECODE_BYTES * max_pixels + JPEG_WORKING_BYTES) // 1000)  # libjpeg reads thousands of bytes
    if os.environ.get("JPEGMEM") != kilobytes:
        os.environ["JPEGMEM"] = kilobytes


def _check_coefficients(img: Image.Image, max_pixels: int) -> None:
    """ImageTooLarge when a JPEG decoded through a buffer of all its coefficients (``_check_jpeg`` says
    when) needs more memory for them than the pixel limit allows any image: COEFFICIENT_BYTES a pixel of
    each component, subsampled ones by their share (the reduced draft scales its output only), against
    DECODE_BYTES a pixel. A 313 KB progressive CMYK JPEG of 40 Mpx took 305 MiB (an audit); a colour
    photo subsampled 4:2:0 costs half the limit's."""
    width, height = img.size
    layers = getattr(img, "layer", None) or [(0, 1, 1, 0)] * len(img.getbands())
    h_max, v_max = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    share = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    needed, budget = COEFFICIENT_BYTES * width * height * share, DECODE_BYTES * max_pixels
    if needed > budget:
        allowed = int(budget / (COEFFICIENT_BYTES * share))
        raise ImageTooLarge(f"JPEG of {width}x{height} pixels and {len(layers)} components, progressive or in more than "
                            f"one scan, decodes through {needed / 2**20:.0f} MiB of coefficient buffers; the decode "
                            f"budget is {budget / 2**20:.0f} MiB (EMODRIFT_MAX_IMAGE_PIXELS x {DECODE_BYTES} bytes), "
                            f"so at most {allowed} pixels for this kind of JPEG: send a baseline JPEG in one scan, "
                            "or a smaller one")


def _check_structure(data: bytes, fmt: str, max_jpeg_scans: int, max_image_chunks: int) -> JpegWalk:
    """ImageTooComplex when the bytes' structure, walked without decoding, holds more passes or chunks
    than any photo (each costs the decoder a pass, or a turn of Pillow's Python loop); UnsupportedImage
    for a JPEG coded in a way no camera uses. A JPEG's walk (its scans, and the passes the decoder will make
    over the image: its scans' components); one scan and one pass for every other format."""
    if fmt != "JPEG":
        walk = JpegWalk(1, 1, None)
    else:
        walk = walk_jpeg(data, max_jpeg_scans, max_image_chunks)
        if walk.scans > max_jpeg_scans:
            raise ImageTooComplex(f"JPEG has more than {max_jpeg_scans} scans; a photo has at most a dozen")
        if walk.steps > max_image_chunks:
            raise ImageTooComplex(f"JPEG has more than {max_image_chunks} segments, fill and junk bytes between its "
                                  "segments; a photo has a few dozen segments")
        if walk.reserved is not None:
            raise CorruptImage(f"cannot decode JPEG image: it holds marker FF{walk.reserved:02X}, which no encoder "
                               "writes and libjpeg takes only to recover from damage: re-encode it")
        if walk.frame is not None and walk.frame not in _HUFFMAN_FRAMES:
            raise UnsupportedImage(f"JPEG coded with SOF{walk.frame - 0xC0} (arithmetic, lossless or hierarchical) "
                                   "is not taken: send a baseline or progressive JPEG, as cameras and phones write")
    # 20 MiB of PNG in libpng's 8 KiB data chunks is ~2600 chunks
    if fmt == "PNG" and count_png_chunks(data, max_image_chunks) > max_image_chunks:
        raise ImageTooComplex(f"PNG has more than {max_image_chunks} chunks")
    if fmt == "GIF" and count_gif_blocks(data, max_image_chunks) > max_image_chunks:
        raise ImageTooComplex(f"GIF has more than {max_image_chunks} blocks before its first image")
    return walk


def _to_gray(img: Image.Image) -> Image.Image:
    """One conversion to 'L'; transparent pixels are composited over white, not read as black."""
    if img.mode == "L":
        return img
    if img.mode.startswith("I"):  # 16-bit PNG: Pillow's I→L clips at 255, so rescale instead
        return _sixteen_bit_gray(img)
    if _transparent(img):
        return _in_tiles(img, _over_white)
    if img.mode in ("RGB", "P", "1"):
        return img.convert("L")  # straight to grey, no wider copy
    # CMYK (a JPEG the draft leaves in it), YCbCr, LAB: Pillow converts them through a full-size RGB copy,
    # ~9 bytes a decoded pixel with the decode (an audit: a CMYK strip too narrow to reduce, +343 MiB at 40 Mpx)
    return _in_tiles(img, lambda tile: tile.convert("L"))


def _eight_bit_key(img: Image.Image) -> None:
    """A 16-bit colour PNG's transparent colour, as the 8 bits a channel Pillow decoded it to (the high byte):
    kept at 16 bits it matched no pixel, and the transparent background came out black, not white (a
    re-audit). Colours that differ in their low byte only are taken as transparent too."""
    key = img.info.get("transparency")
    if img.mode == "RGB" and isinstance(key, tuple) and max(key) > 255:
        img.info["transparency"] = tuple(value >> 8 for value in key)


def _in_tiles(img: Image.Image, grey_of: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """One full-size 'L' image made a tile of at most _CHUNK pixels at a time (``grey_of`` each), so the
    conversion's wider copies are of a tile, not of the image (docs/limits.md)."""
    grey = Image.new("L", img.size)
    for box in _tiles(*img.size):
        grey.paste(grey_of(img.crop(box)), box[:2])
    return grey


def _over_white(tile: Image.Image) -> Image.Image:
    """A transparent tile's grey, composited over white: whole-image RGBA copies (and the premultiplied one
    Pillow's reduce makes) took 8-12 bytes a pixel, so transparency was charged twice against the limit."""
    rgba = tile if tile.mode in ("RGBA", "LA") else tile.convert("RGBA")  # a palette's or colour key's alpha
    white = Image.new("L", rgba.size, 255)
    return Image.composite(rgba.convert("L"), white, rgba.getchannel("A"))


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Boxes of at most _CHUNK pixels covering the image, whatever its shape (blocks of rows did nothing for
    an image one row high).

    >>> _tiles(3, 2) == [(0, 0, 3, 2)]
    True
    """
    cols = min(width, _CHUNK)
    rows = max(1, _CHUNK // cols)
    return [(left, top, min(width, left + cols), min(height, top + rows))
            for top in range(0, height, rows) for left in range(0, width, cols)]


def _sixteen_bit_gray(img: Image.Image) -> Image.Image:
    """65535 → 255, rounded (round(x / 257) is floor((2x + 257) / 514)); a tRNS grey level's pixels are
    transparent, so white (the RGBA path would first clip every level past 255 to white: all white, no
    face). In tiles (``_in_tiles``): float64 temporaries of the whole image took ~1 GB at 40 Mpx.

    >>> np.asarray(_sixteen_bit_gray(Image.fromarray(np.array([[0, 128, 129, 65535]], dtype=np.uint16)))).tolist()
    [[0, 0, 1, 255]]
    """
    level = img.info.get("transparency")

    def grey_of(tile: Image.Image) -> Image.Image:
        wide = np.asarray(tile, dtype=np.int64)
        out = np.clip((2 * wide + 257) // 514, 0, 255).astype(np.uint8)
        if isinstance(level, int):
            out[wide == level] = 255
        return Image.fromarray(out)
    return _in_tiles(img, grey_of)


def _reduced(gray: Image.Image) -> Image.Image:
    """Box-reduced by a whole factor while the shorter side stays >= DRAFT_SIDE: what libjpeg's draft
    does for a JPEG, for every other format (a face a fifth of the shorter side keeps >= 64 px)."""
    factor = min(gray.size) // DRAFT_SIDE
    return gray.reduce(factor) if factor >= 2 else gray


def _square_around(
    face: tuple[float, float, float, float], size: tuple[int, int], margin: float
) -> tuple[float, float, float, float]:
    """A square (left, top, right, bottom) around ``face`` grown by ``margin`` per side.

    The square is shifted, not squashed, to stay inside the image, so the face keeps its aspect
    ratio; only when the image is narrower than the square does the square shrink to fit.

    >>> _square_around((10, 10, 20, 20), (100, 100), 0.25)  # grown 5 px per side
    (5.0, 5.0, 35.0, 35.0)
    >>> _square_around((0, 0, 20, 40), (100, 50), 0.25)  # 60 px square, shifted inside
    (0.0, 0.0, 50.0, 50.0)
    """
    x, y, w, h = face
    side = min(max(w, h) * (1.0 + 2.0 * margin), float(min(size)))
    cx, cy = x + w / 2.0, y + h / 2.0
    left = min(max(cx - side / 2.0, 0.0), size[0] - side)
    top = min(max(cy - side / 2.0, 0.0), size[1] - side)
    return (left, top, left + side, top + side)
