"""Writes examples/face.jpg: the face from scikit-image's astronaut photograph, cropped and small.

The photograph is a NASA portrait of astronaut Eileen Collins that scikit-image ships as
``skimage.data.astronaut()``; its documentation says "No known copyright restrictions, released into
the public domain" (from the NASA Great Images database). See examples/README.md.

    python examples/make_face.py        (needs scikit-image: `pip install -e ".[dev]"`)
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from skimage import data

OUT = Path(__file__).resolve().parent / "face.jpg"
CROP = (95, 10, 355, 270)  # (x0, y0, x1, y1) in the 512x512 photo: the face (160-290, 50-190) with a margin
SIZE = 192


def main() -> None:
    photo = Image.fromarray(data.astronaut())
    face = photo.crop(CROP).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    face.save(OUT, "JPEG", quality=85, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
