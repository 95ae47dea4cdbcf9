"""service.images against real photographs and real broken files (see image_fixtures)."""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, features

from service.errors import CorruptImage, ImageTooComplex, ImageTooLarge, UnsupportedImage
from service import model_repository
from service import images
from service.config import Settings
from service.faces import BlazeFaceDetector
from service.images import CROP_SIZE, DRAFT_SIDE, Detector, FaceDetector, decode_gray, prepare, walk_jpeg
from tests import image_fixtures as fx

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000}


@pytest.fixture(scope="module", params=["blazeface", "haar"])
def detector(request: pytest.FixtureRequest) -> Detector:
    """The service's detector and the slow reference: both must pass every test here."""
    if request.param == "haar":
        return FaceDetector()
    return BlazeFaceDetector(model_repository.load(Settings().model_repository, "face_detector"))


def _centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


def _assert_on_astronaut_face(box, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> None:
    """``box`` sits on the astronaut's face in a copy scaled by ``scale`` and shifted by dx, dy."""
    x0, y0, x1, y1 = (v * scale for v in fx.ASTRONAUT_FACE)
    cx, cy = _centre(box)
    assert x0 + dx < cx < x1 + dx and y0 + dy < cy < y1 + dy, box
    assert 0.4 * (x1 - x0) < box[2] < 1.3 * (x1 - x0), box


def test_astronaut_face_is_found_and_cropped(detector):
    crop = prepare(fx.face_jpeg("happy"), **LIMITS, detector=detector)

    assert crop.face_detected
    assert crop.source_size == (512, 512)
    _assert_on_astronaut_face(crop.box)
    assert crop.pixels.shape == (CROP_SIZE, CROP_SIZE) and crop.pixels.dtype == np.float32
    assert -1.0 <= crop.pixels.min() < crop.pixels.max() <= 1.0


def test_no_face_gives_the_centre_square(detector):
    data = fx.no_face_png()
    crop = prepare(data, **LIMITS, detector=detector)

    assert not crop.face_detected and crop.box is None
    assert crop.source_size == (600, 400)
    # The centre 400x400 square of the photo, resized the same way, is what came out.
    gray = Image.open(io.BytesIO(data)).convert("L")
    centre = gray.resize((64, 64), Image.Resampling.BICUBIC, box=(100, 0, 500, 400))
    expected = (np.asarray(centre, dtype=np.float32) / 255 - 0.5) * 2
    np.testing.assert_allclose(crop.pixels, expected, atol=1e-6)


def test_every_picked_lfw_face_is_detected(detector):
    for data in fx.happy_faces() + fx.negative_faces():
        assert prepare(data, **LIMITS, detector=detector).face_detected


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "GIF", "WEBP"])
def test_other_allowed_formats(detector, fmt):
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    crop = prepare(fx.encode(fx.astronaut(), fmt), **LIMITS, detector=detector)
    assert crop.face_detected
    _assert_on_astronaut_face(crop.box)


def test_animated_gif_uses_the_first_frame(detector):
    face, blank = fx.astronaut(), Image.new("RGB", (512, 512), (200, 200, 200))
    data = fx.encode(face, "GIF", save_all=True, append_images=[blank, blank], duration=100)
    assert prepare(data, **LIMITS, detector=detector).face_detected
    data = fx.encode(blank, "GIF", save_all=True, append_images=[face], duration=100)
    assert not prepare(data, **LIMITS, detector=detector).face_detected


def test_png_with_alpha_composites_over_white(detector):
    crop = prepare(fx.alpha_png(), **LIMITS, detector=detector)
    assert crop.face_detected
    gray, _ = decode_gray(fx.alpha_png(), max_pixels=LIMITS["max_pixels"])
    assert gray.mode == "L" and gray.getpixel((10, 10)) == 255  # transparent, black beneath


def test_exif_orientation_is_applied(detector):
    upright = prepare(fx.encode(fx.astronaut((768, 512))), **LIMITS, detector=detector)
    rotated = prepare(fx.rotated_exif_jpeg(), **LIMITS, detector=detector)

    assert rotated.face_detected
    assert rotated.source_size == upright.source_size == (768, 512)
    assert np.allclose(_centre(rotated.box), _centre(upright.box), atol=12)


def test_a_face_a_tenth_of_a_wide_photo_is_found(detector):
    crop = prepare(fx.encode(fx.astronaut((1024, 512))), **LIMITS, detector=detector)
    assert crop.face_detected  # ~100 px face in 1024 px: just above DETECT_SIDE's smallest face
    _assert_on_astronaut_face(crop.box, dx=256)


def test_picked_faces_read_as_picked_by_the_emotion_cnn(detector):
    model = Path(__file__).resolve().parents[1] / "model_repository/emotion_cnn/1/model.onnx"
    if not model.exists():
        pytest.skip("emotion_cnn not exported")
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])

    def probabilities(faces: list[bytes]) -> np.ndarray:
        batch = np.stack([prepare(d, **LIMITS, detector=detector).pixels for d in faces])
        return session.run(["probabilities"], {"image": batch[:, None]})[0]  # (N, 7)

    assert (probabilities(fx.happy_faces()).argmax(axis=1) == 3).all()  # happy
    negative = probabilities(fx.negative_faces())[:, [0, 1, 2, 4]].sum(axis=1)  # angry..sad
    assert (negative > 0.8).all(), negative


def test_jpeg_draft_mode_decodes_a_camera_photo_at_one_eighth(detector):
    data = fx.large_jpeg((4000, 3000))
    gray, source_size = decode_gray(data, max_pixels=LIMITS["max_pixels"])
    # DCT scaling picks the largest 1/2^k keeping both sides >= DRAFT_SIDE: 1/8 here.
    assert gray.size == (500, 375) and min(gray.size) >= DRAFT_SIDE
    assert source_size == (4000, 3000)

    crop = prepare(data, **LIMITS, detector=detector)
    assert crop.face_detected and crop.source_size == (4000, 3000)
    # The box is in the 4000x3000 frame: the 512 px photo was padded to 683 wide, scaled by 5.86.
    scale = 3000 / 512
    _assert_on_astronaut_face(crop.box, scale=scale, dx=(4000 - 512 * scale) / 2)


def test_a_small_jpeg_is_not_reduced_below_the_draft_side():
    gray, _ = decode_gray(fx.face_jpeg("happy", size=600), max_pixels=LIMITS["max_pixels"])
    assert gray.size == (600, 600)  # 1/2 would give 300 < DRAFT_SIDE


@pytest.mark.parametrize(
    "data", [fx.corrupt_jpeg(), fx.encode(fx.astronaut(), "PNG")[:20_000], b"\xff\xd8\xff\xe0"]
)
def test_truncated_images_are_corrupt(detector, data):
    with pytest.raises(CorruptImage):
        prepare(data, **LIMITS, detector=detector)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "WEBP"])
def test_any_truncation_is_a_domain_error(detector, fmt):
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    whole = fx.encode(fx.astronaut(128), fmt)
    refused = 0
    for cut in np.linspace(1, len(whole) - 1, 25).astype(int):
        try:
            crop = prepare(whole[:cut], **LIMITS, detector=detector)
        except (CorruptImage, UnsupportedImage):
            refused += 1  # what must never escape is any other exception
        else:  # a few formats decode a partial file: then it must still be a valid crop
            assert crop.pixels.shape == (64, 64) and np.isfinite(crop.pixels).all()
    assert refused >= 5, f"only {refused} of 25 truncations of a {fmt} were refused"


@pytest.mark.parametrize("data", [fx.not_an_image(), b"", b"GIF8", b"<svg></svg>", b"II*\x00"])
def test_not_an_allowed_image_is_unsupported(detector, data):
    with pytest.raises(UnsupportedImage):
        prepare(data, **LIMITS, detector=detector)


def test_too_many_bytes(detector):
    data = fx.face_jpeg("happy")
    with pytest.raises(ImageTooLarge):
        prepare(data, max_bytes=len(data) - 1, max_pixels=LIMITS["max_pixels"], detector=detector)


# 8000^2 is under Pillow's own bomb limit, so our check fires; 30000^2 trips Pillow's inside open().
@pytest.mark.parametrize("side", [8000, 30000])
def test_decompression_bomb_is_refused_before_decoding(detector, side):
    data = fx.huge_dimensions_png(side, side)
    assert len(data) < 1000
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        prepare(data, **LIMITS, detector=detector)
    assert time.perf_counter() - started < 0.1  # decoding 64M+ pixels would take far longer


def test_detector_is_safe_to_share_between_threads(detector):
    faces = fx.happy_faces()
    expected = [prepare(d, **LIMITS, detector=detector).box for d in faces]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            got = list(pool.map(lambda d: prepare(d, **LIMITS, detector=detector).box, faces))
            assert got == expected


def test_detector_refuses_a_missing_cascade():
    with pytest.raises(RuntimeError):
        FaceDetector("/nonexistent/cascade.xml")


def _rle_bmp(width: int, height: int) -> bytes:
    """An RLE8 bitmap whose every row is one pixel and an end of line (an outside reviewer's file):
    Pillow's RLE decoder, written in Python, pads each row a byte per loop turn."""
    import struct

    palette, data = bytes(4 * 256), b"\x01\x00\x00\x00" * height + b"\x00\x01"
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(data), 2835, 2835, 256, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette + data


def test_an_rle_bitmap_is_refused_before_decoding() -> None:
    """1,084 bytes claiming 39 Mpx in one row took 4.7 s of CPU holding the interpreter lock. (Such a row is
    refused by its shape now too: the longest row the limit takes, 8 Mpx, would still take ~1 s.)"""
    data = _rle_bmp(7_999_000, 1)
    assert len(data) < 1200
    started = time.process_time()
    with pytest.raises(UnsupportedImage, match="RLE"):
        decode_gray(data, max_pixels=40_000_000)
    assert time.process_time() - started < 0.05
    assert decode_gray(fx.encode(fx.astronaut(), "BMP"), max_pixels=40_000_000)[0].mode == "L"  # plain BMP still


def _png_16bit_grey(width: int, height: int, level: int = 0) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + level.to_bytes(2, "big") * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height, 9)) + chunk(b"IEND", b""))


def test_a_16_bit_grey_png_decodes_without_wide_copies_of_itself() -> None:
    """77 KB of 16-bit grey PNG at 6000x6600 made float64 temporaries of the whole image: ~1 GB a decode
    (an outside review measured +982 MB). numpy's allocations are traced; Pillow's own 2 bytes a pixel
    (its decode) and the 1-byte grey copy are not numpy's and stay."""
    import tracemalloc

    data = _png_16bit_grey(6000, 6600, level=32768)
    tracemalloc.start()
    try:
        gray, size = decode_gray(data, max_pixels=40_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == (6000, 6600) and gray.mode == "L" and gray.getpixel((5, 5)) == round(32768 / 257)
    assert min(gray.size) >= DRAFT_SIDE and max(gray.size) < 1000  # reduced like a JPEG's draft
    assert peak < 80 * 2**20, f"{peak / 2**20:.0f} MiB traced"  # the grey copy (40 MB) and one tile
    # blocks of rows did nothing for one row 39 million pixels wide: +968 MB (a re-audit); the longest row the
    # limit takes now (its columns count too: test_a_long_thin_image_counts_its_rows_and_columns), in tiles
    row = _png_16bit_grey(7_999_000, 1, level=32768)
    tracemalloc.start()
    try:
        decode_gray(row, max_pixels=40_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB traced for one row"


def test_a_webp_counts_its_decoding_buffers_against_the_pixel_limit() -> None:
    """A 676-byte RGBA WebP of 16 Mpx took +384 MB to decode (libwebp's buffer and Pillow's copy)."""
    if not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    big = fx.encode(Image.new("RGBA", (4000, 4000), (0, 0, 0, 0)), "WEBP", lossless=True)
    with pytest.raises(ImageTooLarge, match="for WebP"):
        decode_gray(big, max_pixels=16_000_000)
    small = fx.encode(Image.new("RGBA", (2000, 2000), (0, 0, 0, 0)), "WEBP", lossless=True)
    gray, _ = decode_gray(small, max_pixels=16_000_000)
    assert gray.getpixel((5, 5)) == 255  # transparent: white


def _jpeg(mode: str, size: tuple[int, int], **options) -> bytes:
    noise = np.random.default_rng(0).integers(100, 140, (size[1], size[0], len(mode)), dtype=np.uint8)
    buf = io.BytesIO()  # saved as it is (fx.encode makes an RGB of a CMYK)
    Image.frombytes(mode, size, noise.tobytes()).save(buf, "JPEG", quality=70, **options)
    return buf.getvalue()


def test_a_progressive_jpeg_counts_its_coefficients_against_the_pixel_limit() -> None:
    """libjpeg decodes a JPEG of more than one scan through every coefficient of the full-size image, 2
    bytes a pixel of each component whatever the draft: a 313 KB progressive CMYK JPEG of 40 Mpx took
    +305 MiB (an audit). Its pixels count against the limit as the 6 bytes a pixel of a PNG do: 4
    components at full resolution, three quarters of the limit; a colour photo subsampled 4:2:0, twice it."""
    limit = 1_000_000
    cmyk = _jpeg("CMYK", (1000, 900), progressive=True)
    with pytest.raises(ImageTooLarge, match=r"JPEG of 1000x900 pixels and 4 components, progressive .* 750000 pixels"):
        decode_gray(cmyk, max_pixels=limit)
    decode_gray(_jpeg("CMYK", (1000, 900)), max_pixels=limit)  # one scan: decoded a block row at a time
    decode_gray(_jpeg("CMYK", (860, 860), progressive=True), max_pixels=limit)
    decode_gray(_jpeg("RGB", (1000, 1000), progressive=True, subsampling=0), max_pixels=limit)  # 4:4:4, at the limit
    decode_gray(_jpeg("RGB", (1000, 1000), progressive=True, subsampling=2), max_pixels=limit)


def _decode_peak(path: Path, max_pixels: int = 10**9, setup: str = "pass") -> tuple[int, str]:
    """The peak memory (bytes over its resident set before) of a fresh process decoding the image at ``path``
    (``setup``: Python run first), and what the decode said: "ok" or its error's name."""
    import subprocess
    import sys

    # the peak from VmHWM after a reset (clear_refs 5): ru_maxrss keeps the parent's peak across exec
    script = (f"import re, sys; from service import images; {setup}; data = open(sys.argv[1], 'rb').read(); "
              "kb = lambda key: int(re.search(key + r':\\s+(\\d+)', open('/proc/self/status').read())[1]); "
              "before = kb('VmRSS'); open('/proc/self/clear_refs', 'w').write('5'); said = 'ok'\n"
              f"try: images.decode_gray(data, max_pixels={max_pixels})\n"
              "except Exception as exc: said = type(exc).__name__\n"
              "print(kb('VmHWM') - before, said)")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parent.parent, env={k: v for k, v in os.environ.items() if k != "JPEGMEM"})
    peak, said = done.stdout.split()
    return int(peak) * 1024, said


def test_a_progressive_jpeg_decode_takes_the_memory_its_check_counts(tmp_path: Path) -> None:
    """What the check above rests on, measured: the peak memory of a process decoding a progressive CMYK
    JPEG of 16 Mpx is ~2 bytes a pixel of each component (128 MB), the same image in one scan a fraction."""
    side = 4000
    peaks = {}
    for name, options in (("progressive", {"progressive": True}), ("baseline", {})):
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(_jpeg("CMYK", (side, side), **options))
        peaks[name], said = _decode_peak(path)
        assert said == "ok"
    counted = 2 * 4 * side * side
    assert peaks["progressive"] > 0.75 * counted and peaks["baseline"] < 0.25 * counted, (peaks, counted)


def _photo(size: tuple[int, int], **options) -> bytes:
    """A smooth colour JPEG of ``size`` (a camera photo's size without its noise: quick to make)."""
    grey = Image.radial_gradient("L").resize(size)
    buf = io.BytesIO()
    Image.merge("RGB", (grey, grey.transpose(Image.Transpose.ROTATE_180), Image.linear_gradient("L").resize(size))).save(
        buf, "JPEG", quality=85, **options)
    return buf.getvalue()


def test_a_camera_jpeg_past_the_pixel_limit_is_decoded_reduced(tmp_path: Path) -> None:
    """A JPEG counts against the pixel limit by what its decode holds, not its header: baseline in one scan,
    libjpeg decodes a row of blocks at a time at 1/8 a side, so a 40 Mpx camera photo holds 0.6 Mpx, and a
    limit of 16 Mpx (deploy/k8s) refused every 24-40 Mpx photo before. A strip too narrow to reduce
    still counts at full size; a progressive photo counts its coefficient buffers (the test above)."""
    limit = 16_000_000
    path = tmp_path / "camera.jpg"
    path.write_bytes(_photo((8000, 5000)))
    gray, source_size = decode_gray(path.read_bytes(), max_pixels=limit)
    assert gray.size == (1000, 625) and source_size == (8000, 5000)
    peak, said = _decode_peak(path, limit)
    assert said == "ok" and peak < 0.1 * 6 * limit, peak  # the decode budget the limit stands for: 6 bytes a pixel
    with pytest.raises(ImageTooLarge, match=r"JPEG of 40000x401 pixels decodes at 40000x401 even reduced"):
        decode_gray(_photo((40000, 401)), max_pixels=limit)
    decode_gray(_photo((40000, 399)), max_pixels=limit)
    # progressive 4:2:0, 2 x 1.5 bytes a pixel of coefficients: up to twice the limit's pixels
    decode_gray(_jpeg("RGB", (1400, 1400), progressive=True, subsampling=2), max_pixels=1_000_000)
    with pytest.raises(ImageTooLarge, match="coefficient buffers"):
        decode_gray(_jpeg("RGB", (1450, 1450), progressive=True, subsampling=2), max_pixels=1_000_000)


def test_a_cmyk_jpeg_too_narrow_to_reduce_is_made_grey_within_the_budget(tmp_path: Path) -> None:
    """The draft decodes a CMYK JPEG as CMYK (4 bytes a pixel) and Pillow made it grey through a full-size
    RGB copy: ~9 bytes a decoded pixel (an audit: a 171-byte CMYK strip of 40 Mpx, +343 MiB). Made grey
    a tile at a time, it stays within the 6 bytes a pixel the limit stands for."""
    size = (20000, 300)
    path = tmp_path / "strip.jpg"
    path.write_bytes(_solid_cmyk(size))
    gray, _ = decode_gray(path.read_bytes(), max_pixels=size[0] * size[1])
    assert gray.size == size and np.asarray(gray).std() < 1
    peak, said = _decode_peak(path, size[0] * size[1])
    assert said == "ok" and peak < 6 * size[0] * size[1], peak


def test_a_long_thin_image_counts_its_rows_and_columns(tmp_path: Path) -> None:
    """Pillow keeps a pointer a row of each full-size copy and the PNG decoder two buffers a row wide: a 1 x 40
    Mpx RGBA PNG (243 KB) took +813 MiB, 21 bytes a pixel, and 3.1 s; a 16-bit RGBA one of 40 Mpx x 1 made
    Pillow raise MemoryError, a 500 with a traceback a post (a re-audit). Rows and columns now count against
    the limit too, and such a decode peaks within the 6 bytes a pixel of the limit; a decoder that cannot be
    set up is a 413."""
    limit = 16_000_000
    with pytest.raises(ImageTooLarge, match="long and thin"):
        decode_gray(fx.huge_dimensions_png(1, limit // 4), max_pixels=limit)
    with pytest.raises(ImageTooLarge, match="long and thin"):
        decode_gray(fx.huge_dimensions_png(limit // 4, 1), max_pixels=limit)
    column = np.arange(limit // 5 - 1, dtype=np.uint32).astype(np.uint8).reshape(-1, 1)
    path = tmp_path / "column.png"
    path.write_bytes(fx.encode(Image.fromarray(column).convert("RGBA"), "PNG"))
    peak, said = _decode_peak(path, limit)
    assert said == "ok" and peak < 6 * limit, peak
    wide = zlib_png(40_000_000, 1, depth=16, colour=6)  # 16-bit RGBA: Pillow cannot index its row
    with pytest.raises(ImageTooLarge, match="rows are too long for the decoder"):
        decode_gray(wide, max_pixels=10**9)


def test_a_16_bit_colour_pngs_transparent_colour_is_white() -> None:
    """Pillow decodes a 16-bit RGB PNG to 8 bits a channel but kept its 16-bit tRNS colour, which then matched
    no pixel: the transparent background came out black (a re-audit; the same before this round)."""
    import struct
    import zlib

    key, face = (1000, 2000, 3000), (30000, 20000, 10000)
    rows = b"".join(b"\x00" + b"".join(struct.pack(">HHH", *(key if x < 32 else face)) for x in range(64))
                    for _ in range(64))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 16, 2, 0, 0, 0))
            + chunk(b"tRNS", struct.pack(">HHH", *key)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    gray = np.asarray(decode_gray(data, max_pixels=10**6)[0])
    assert (gray[:, :31] == 255).all() and (gray[:, 33:] < 128).all(), (gray[0, :4], gray[0, -4:])


def test_a_lossless_webp_counts_its_decoders_tables_at_their_worst(tmp_path: Path) -> None:
    """A lossless WebP may name a prefix-code group per 4x4 block, and libwebp builds ~5.7 KB of tables per
    group: a re-audit's 352 KB file of 1 Mpx took +366 MiB, 1.6 times the budget of a 40 Mpx limit, 16 times a
    4 Mpx one's. A lossless-coded WebP (or one with an alpha plane) now counts those tables at the most groups
    its blocks and its bytes allow, and the worst such file the limit takes decodes within the budget; a
    sticker-sized one, or a large one of few bytes, is taken."""
    from tests.webp_groups import lossless_webp

    limit = 16_000_000
    with pytest.raises(ImageTooLarge, match="lossless or transparent WebP image of 1024x1024 pixels .* may need 390 MiB"):
        decode_gray(lossless_webp(1024, 1024, 65536), max_pixels=limit)
    with pytest.raises(ImageTooLarge, match="lossless or transparent WebP"):
        decode_gray(lossless_webp(500, 500, 125 * 125), max_pixels=limit)
    path = tmp_path / "groups.webp"
    path.write_bytes(lossless_webp(480, 480, 120 * 120))  # the most pixels, and groups, the limit takes
    decode_gray(path.read_bytes(), max_pixels=limit)
    peak, said = _decode_peak(path, limit)
    assert said == "ok" and peak < 6 * limit, peak
    sticker = fx.astronaut(512).convert("RGBA")  # a photo cut out in a disc, as chat stickers are
    disc = Image.new("L", (512, 512), 0)
    disc.paste(255, (0, 0, 512, 512), Image.radial_gradient("L").resize((512, 512)).point(lambda v: 255 if v < 128 else 0))
    sticker.putalpha(disc)
    for image, lossless in ((sticker, False), (Image.new("RGBA", (2000, 2000), (90, 60, 30, 128)), True)):
        buf = io.BytesIO()  # lossy with its alpha plane lossless-coded (ALPH); a large lossless one of few bytes
        image.save(buf, "WEBP", lossless=lossless, quality=80)
        decode_gray(buf.getvalue(), max_pixels=limit)


def test_an_upright_turned_strip_frees_its_decode_first(tmp_path: Path) -> None:
    """A strip too narrow to reduce, turned by its EXIF orientation, held its decode, its grey and the turned
    grey at once: 6.4 bytes a pixel (a re-audit). The decode is freed before the grey is turned."""
    size = (64, 150_000)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 3
    strip = Image.fromarray((np.arange(size[0] * size[1]) % 251).astype(np.uint8).reshape(size[1], size[0]))
    path = tmp_path / "strip.png"
    strip.convert("RGBA").save(path, "PNG", exif=exif.tobytes())
    peak, said = _decode_peak(path, size[0] * size[1])
    assert said == "ok" and peak < 6 * size[0] * size[1], peak


def zlib_png(width: int, height: int, depth: int, colour: int) -> bytes:
    """A PNG header of ``width`` x ``height`` (``depth`` bits, ``colour`` type) and a few bytes of data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(16))) + chunk(b"IEND", b""))


def _solid_cmyk(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()  # saved as it is (fx.encode makes an RGB of a CMYK)
    Image.new("CMYK", size, (10, 200, 30, 5)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def test_libjpeg_refuses_to_buffer_coefficients_past_the_decode_budget(tmp_path: Path) -> None:
    """The backstop behind the walk: a JPEG that hid from it what libjpeg buffers (every image audit found a
    new way; none is known now, so the walk is made to miss a progressive frame) fails in libjpeg, held by
    ``bound_jpeg_memory``'s JPEGMEM, instead of taking its buffers past the budget."""
    limit = 1_000_000
    path = tmp_path / "progressive.jpg"
    path.write_bytes(_jpeg("CMYK", (2000, 2000), progressive=True))  # 32 MB of coefficients; the budget is 6
    missed = "images.walk_jpeg = lambda data, scans, steps: images.JpegWalk(1, 4, 0xC0)"  # baseline, one scan
    unbounded, said = _decode_peak(path, limit, missed)
    assert said == "ok" and unbounded > 30_000_000, unbounded  # what the miss costs without the backstop
    bounded, said = _decode_peak(path, limit, f"{missed}; images.bound_jpeg_memory({limit})")
    assert said == "CorruptImage" and bounded < 6 * limit + images.JPEG_WORKING_BYTES, bounded
    assert _decode_peak(path, limit, f"images.bound_jpeg_memory({limit})")[1] == "ImageTooLarge"  # the walk's check


def test_bytes_between_segments_hide_no_scan_from_the_checks() -> None:
    """``FF 00`` between segments is no marker: libjpeg and Pillow discard it, while the walk read it as one
    with a length and jumped over the frame and every scan (an audit: 0 scans found, so no scan limit, no
    passes x pixels and no coding check; 3000 hidden scans took 8.5 s of CPU). A walk that finds no frame
    or no scan where the decoder does is refused, not trusted."""
    progressive = _jpeg("RGB", (320, 240), progressive=True)
    assert len(progressive) < 65_000
    # read as a marker, FF 00 FF FF has a length of 65535: the jump lands past the whole image, in padding
    hidden = progressive[:2] + b"\xff\x00\xff\xff" + progressive[2:] + b"\x00" * 70_000
    assert Image.open(io.BytesIO(hidden)).size == (320, 240)  # the decoder reads it as the original
    assert walk_jpeg(hidden, 100) == walk_jpeg(progressive, 100)
    for data in (progressive, hidden):
        with pytest.raises(ImageTooComplex, match="passes"):
            decode_gray(data, max_pixels=10**8, max_jpeg_scan_pixels=320 * 240 * 4)



def test_a_walk_that_finds_no_frame_or_scan_where_the_decoder_does_is_refused(monkeypatch) -> None:
    """Fail closed: no known input makes the walk miss what the decoder reads now, so the walk is made to
    (a fault that cannot be caused for real any more: the one above could)."""
    from service import images

    monkeypatch.setattr(images, "walk_jpeg", lambda data, limit, max_steps: images.JpegWalk(0, 0, None))
    with pytest.raises(CorruptImage, match="frame and scans could not be read"):
        decode_gray(_jpeg("RGB", (320, 240), progressive=True), max_pixels=10**8)


def test_a_jpeg_buffers_every_coefficient_in_one_progressive_scan_too() -> None:
    """libjpeg buffers every coefficient for a progressive frame whatever its scans, and for a first scan
    without every component: a progressive CMYK JPEG cut after its first scan (one DC scan of all four
    components) took +307 MiB at 40 Mpx, unchecked when only walks of more than one scan were (an audit)."""
    full = _jpeg("CMYK", (1000, 900), progressive=True)
    second = full.index(b"\xff\xda", full.index(b"\xff\xda") + 2)
    one_scan = full[:second] + b"\xff\xd9"
    assert walk_jpeg(one_scan, 100).scans == 1
    with pytest.raises(ImageTooLarge, match="progressive or in more than one scan"):
        decode_gray(one_scan, max_pixels=1_000_000)
    decode_gray(_jpeg("CMYK", (1000, 900)), max_pixels=1_000_000)  # baseline, one scan of every component


def _transparent(make: str, size: tuple[int, int]) -> bytes:
    """A picture transparent on its left half and of one colour on its right, with each kind of transparency:
    an alpha band, a palette entry, a colour key."""
    right = (size[0] // 2, 0, size[0], size[1])
    palette = Image.new("P", size, 0)
    palette.putpalette([1, 2, 3, 120, 80, 40])
    palette.paste(1, right)
    if make in ("palette_png", "gif"):
        return fx.encode(palette, "GIF" if make == "gif" else "PNG", transparency=0)
    rgb = palette.convert("RGB")
    if make == "trns_png":
        return fx.encode(rgb, "PNG", transparency=(1, 2, 3))
    alpha = Image.new("L", size, 0)
    alpha.paste(255, right)
    rgb.putalpha(alpha)
    return fx.encode(rgb, "PNG")


@pytest.mark.parametrize("make", ["rgba_png", "palette_png", "trns_png", "gif"])
def test_transparency_is_composited_within_the_budget_of_the_pixel_limit(make: str, tmp_path: Path) -> None:
    """A PNG or GIF with transparency is composited over white a tile at a time: through a full-size RGBA
    copy (and the premultiplied one Pillow's reduce made) it took 8-12 bytes a pixel (an audit: a 16-bit
    RGB PNG with tRNS +459 MiB at 40 Mpx), so its pixels counted twice and a 4K screenshot with an alpha
    channel was refused under a 16 Mpx limit. Now it peaks within the 6 bytes a pixel the limit stands for,
    measured in a fresh process, and takes the whole limit."""
    size = (1000, 900)
    gray = np.asarray(decode_gray(_transparent(make, size), max_pixels=size[0] * size[1])[0])
    half = gray.shape[1] // 2  # transparent: the white under it; opaque: the colour's grey
    assert (gray[:, :half - 1] == 255).all() and (gray[:, half + 1:] == 87).all(), (gray.min(), gray.max())
    path = tmp_path / "big"
    path.write_bytes(_transparent(make, (4000, 2500)))
    peak, said = _decode_peak(path)
    assert said == "ok" and peak < 6 * 4000 * 2500, peak


def test_a_reserved_marker_hides_no_scan_from_the_checks() -> None:
    """In a scan with restart markers, libjpeg takes a reserved marker (FF02-FFBF) where a restart was due
    and resyncs to the next marker, decoding every scan after it; the walk read it as a segment with a
    length and jumped them (a re-audit: 20 000 scans hidden behind 14 bytes each, 147 s of CPU, image posts
    answered 429 for 11 minutes). No encoder writes one: refused before decoding."""
    noise = np.random.default_rng(0).integers(100, 140, (240, 320, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=70, progressive=True, restart_marker_blocks=4)
    data = buf.getvalue()
    restart = data.index(b"\xff\xd0", data.index(b"\xff\xda"))
    jump = data.rindex(b"\xff\xd9") - restart - 12  # a "length" that lands near the end
    hidden = data[:restart] + b"\xff\x02" + jump.to_bytes(2, "big") + data[restart + 4:]
    Image.open(io.BytesIO(hidden)).load()  # the decoder reads every scan
    assert walk_jpeg(data, 100).scans == 10 and walk_jpeg(hidden, 100).reserved == 0x02
    with pytest.raises(CorruptImage, match="marker FF02"):
        decode_gray(hidden, max_pixels=10**8)
    decode_gray(data, max_pixels=10**8)  # restart markers themselves are fine


def test_a_transparency_after_the_image_data_is_not_composited() -> None:
    """The PNG spec puts tRNS before IDAT; Pillow reads one after it while loading, once the pixel limit was
    checked without it, and the full-size RGBA copy it made was never counted (a re-audit: +459 MiB at 40
    Mpx). It is ignored: the picture is decoded as the opaque one it was checked as."""
    rgb = Image.new("RGB", (300, 200), (1, 2, 3))
    declared = fx.encode(rgb, "PNG", transparency=(1, 2, 3))
    chunks, pos = [], 8
    while pos < len(declared):
        length = int.from_bytes(declared[pos:pos + 4], "big")
        chunks.append(declared[pos:pos + 12 + length])
        pos += 12 + length
    names = [chunk[4:8] for chunk in chunks]
    trns = chunks.pop(names.index(b"tRNS"))
    late = declared[:8] + b"".join(chunks[:-1]) + trns + chunks[-1]  # before IEND
    gray, _ = decode_gray(late, max_pixels=10**6)
    assert gray.getpixel((5, 5)) == Image.new("RGB", (1, 1), (1, 2, 3)).convert("L").getpixel((0, 0))  # not white
    transparent, _ = decode_gray(declared, max_pixels=10**6)
    assert transparent.getpixel((5, 5)) == 255  # declared in time: transparent, composited over white


@pytest.mark.parametrize("padding", [b"\xff", b"\xff\xfe\x00\x02", b"\xff\x00", b"\x00"])
def test_padding_between_a_jpegs_segments_is_bounded_before_pillow_parses_it(padding: bytes) -> None:
    """Pillow parses a JPEG's header in Python, a turn per fill or junk byte and per segment, keeping every
    COM: 19 MiB of fill bytes, empty COMs, FF 00 or zeros before the frame took 1-12 s of CPU (empty COMs
    +345 MiB) for a 64x64 image, and the walk itself 1-2 s (an audit). Past the chunk limit they are refused
    before Pillow reads them; a few thousand, fewer than the limit, decode as before."""
    small = _jpeg("RGB", (64, 64))
    after = 4 + int.from_bytes(small[4:6], "big")  # after SOI and the first segment (APP0): before the frame
    for count, refused in ((2_000 // len(padding), False), (2_000_000 // len(padding), True)):
        padded = small[:after] + padding * count + small[after:]
        started = time.process_time()
        if refused:
            with pytest.raises(ImageTooComplex, match="segments, fill and junk bytes"):
                decode_gray(padded, max_pixels=10**6)
            assert time.process_time() - started < 0.5, "the walk stops at the limit"
        else:
            decode_gray(padded, max_pixels=10**6)
