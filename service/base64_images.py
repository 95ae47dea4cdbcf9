"""Image bytes sent as base64 text (``image_base64`` of /posts/base64 and of batch items): what is taken,
and a refusal that says what is wrong.

Taken: the standard alphabet with its ``=`` padding (RFC 4648, section 4), with whitespace anywhere (the
``base64`` tool wraps its output at 76 columns, MIME style) and after a ``data:<type>;base64,`` prefix (a
data URL, as a browser's ``FileReader.readAsDataURL`` makes). Refused with the reason: the URL-safe
alphabet (``-`` and ``_``), missing padding, any other character.

>>> decode_base64("aGVs\\nbG8=")
b'hello'
>>> decode_base64("data:image/jpeg;base64,aGVsbG8=")
b'hello'
>>> decode_base64("aGVsbG8")
Traceback (most recent call last):
...
ValueError: not valid base64: 7 characters, not a multiple of 4 (is the '=' padding missing?)
"""

from __future__ import annotations

import base64
import binascii
import re

BASE64_SLICE = 256 * 1024  # characters (a multiple of 4) decoded per call; see decode_base64
WHITESPACE = " \t\r\n"
_DATA_URL = re.compile(r"data:[^,;]*(;[^,;]*)*?;base64,")
_OUTSIDE = re.compile(f"[^A-Za-z0-9+/={WHITESPACE}]")


def decode_base64(value: str) -> bytes:
    """The bytes, or ValueError("not valid base64: <what is wrong>").

    Decoded a slice at a time: one call holds the interpreter lock throughout (docs/limits.md), so a
    thread decoding a large image in one call would still stall the event loop; between slices it
    can run. The quanta a slice leaves over (whitespace moves them) go with the next slice, and padding
    is refused before the end, so slices decode to exactly what the whole string would and refuse what
    it would refuse.
    """
    if value.startswith("data:"):
        prefix = _DATA_URL.match(value, 0, 512)
        if prefix is None:
            raise ValueError("not valid base64: a data: URL without ';base64,' before the data")
        value = value[prefix.end():]
    try:
        decoded = _decode_slices(value)
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError among them
        raise ValueError(f"not valid base64: {_what_is_wrong(value)}") from exc
    if not decoded:  # no image at all (a 422), not an image of an unknown type (415)
        raise ValueError("is empty: the image's bytes, base64, are required")
    return decoded


def _decode_slices(value: str) -> bytes:
    decoded, carry, padded = [], b"", False
    for start in range(0, len(value), BASE64_SLICE):
        text = carry + value[start:start + BASE64_SLICE].encode("ascii").translate(None, WHITESPACE.encode())
        whole = len(text) - len(text) % 4
        if padded and text:
            raise ValueError("padding before the end")
        decoded.append(base64.b64decode(text[:whole], validate=True))
        carry, padded = text[whole:], text[whole - 1:whole] == b"="
    if carry:
        raise ValueError("a partial quantum at the end")
    return decoded[0] if len(decoded) == 1 else b"".join(decoded)


def _what_is_wrong(value: str) -> str:
    """Why ``value`` (a refused string, without its data: prefix) is not base64, for the client."""
    if stray := _OUTSIDE.search(value):
        if stray.group() in "-_":
            return ("it uses the URL-safe alphabet ('-' and '_'): send standard base64, with '+' and '/' "
                    "(RFC 4648, section 4)")
        return f"{stray.group()!r} at character {stray.start()} is not in the base64 alphabet"
    length = len(value) - sum(value.count(space) for space in WHITESPACE)
    if length % 4:
        return f"{length} characters, not a multiple of 4 (is the '=' padding missing?)"
    return "'=' padding before the end"
