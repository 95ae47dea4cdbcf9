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

import math
from datetime import datetime, timedelta, timezone
from fractions import Fraction

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# Unix seconds as a float hold every microsecond until 2^33 s: past that a double's step is over a
# microsecond (2 µs in 2300, 30 µs by 9999), so a time from then is written from its datetime (iso_datetime)
EXACT_UNTIL = 2 ** 33  # 2242-03-16T12:56:32Z


def iso_time(ts: float) -> str:
    """Unix seconds → ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (to the microsecond while ``ts < EXACT_UNTIL``)."""
    return iso_datetime(datetime.fromtimestamp(ts, timezone.utc))


def unix_seconds(value: datetime) -> float:
    """``value.timestamp()``, never later than ``value``: past EXACT_UNTIL the nearest float can be
    microseconds after it, and a user's last_post_at, written from the float, would follow its post.

    >>> at = datetime(5000, 6, 15, 12, 34, 56, 938012, timezone.utc)
    >>> iso_time(at.timestamp()), iso_time(unix_seconds(at))
    ('5000-06-15T12:34:56.938019Z', '5000-06-15T12:34:56.938004Z')
    """
    ts = value.timestamp()
    if ts >= EXACT_UNTIL and Fraction(ts) > Fraction((value - EPOCH) // timedelta(microseconds=1), 10 ** 6):
        ts = math.nextafter(ts, 0.0)
    return ts


def iso_datetime(value: datetime) -> str:
    """An aware datetime in the same shape, exact whatever its year.

    >>> iso_datetime(datetime(5000, 6, 15, 12, 34, 56, 938012, timezone.utc))
    '5000-06-15T12:34:56.938012Z'
    """
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def for_people(value: str | None) -> str:
    """RFC 3339 as a person reads it: '2026-11-01 09:00:00 UTC' (the /ui pages, the timeline picture);
    anything else is shown as it came.

    >>> for_people("2026-11-10T03:00:00.000000Z"), for_people(None)
    ('2026-11-10 03:00:00 UTC', '—')
    """
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value
