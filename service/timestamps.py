"""Times as the API writes them: RFC 3339 in UTC, always with microseconds and a ``Z``.

One shape for every field (posts, users, alerts, webhook subscriptions, deliveries, attempts):
``datetime.isoformat()`` alone drops the fraction when it is zero, and the webhook modules wrote
milliseconds, so one field could come in two shapes and two fields in different ones.

>>> iso_time(0)
'1970-01-01T00:00:00.000000Z'
>>> iso_time(1764082800.5)
'2025-11-25T15:00:00.500000Z'
"""

from __future__ import annotations

from datetime import datetime, timezone


def iso_time(ts: float) -> str:
    """Unix seconds → ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
