"""JSON on the hot path: orjson, compact.

Every post encodes its result twice (the timeline entry, the answer) and its state's meta once, and
decodes the meta of the record it starts from; with the standard library that was about 10% of an
observation's CPU (py-spy, docs/performance.md). orjson writes the same JSON (shortest float repr,
UTF-8, no spaces) several times faster.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

loads = orjson.loads


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class FastJSONResponse(JSONResponse):
    """A JSONResponse rendered by orjson (the post routes' answers)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
