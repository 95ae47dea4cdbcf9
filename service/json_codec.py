"""JSON on the hot path: orjson, compact.

Every post encodes its result twice (the timeline entry, the answer) and its state's meta once, and
decodes the meta of the record it starts from; with the standard library that was a visible share of
an observation's CPU. orjson writes compact JSON (shortest float repr, UTF-8, no spaces) several times
faster both ways (the figures: docs/performance.md, "Figures behind choices in the code").
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
