"""The retry policy, pure: what an answer means, and when to try again.

>>> [classify(code) for code in (200, 204, 301, 400, 410, 429, 500, 503, None)]
['delivered', 'delivered', 'failed', 'failed', 'gone', 'retry', 'retry', 'retry', 'retry']
>>> {classify(code) for code in (200, 301, 410, 500)} == set(RESULTS)
True
>>> next_delay([5, 300], 0.0, 1, None), next_delay([5, 300], 0.0, 2, 600.0), next_delay([5, 300], 0.0, 3, None)
(5.0, 600.0, None)
>>> retry_after_seconds("120"), retry_after_seconds("soon"), retry_after_seconds(None)
(120.0, None, None)
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 24 * 3600.0  # a receiver cannot park a delivery for longer than a day per attempt
GONE = 410  # the subscription is disabled until POST /v1/webhooks/{id}/enable
TOO_MANY_REQUESTS = 429  # the one 4xx that is retried: the receiver asks to be called later

# classify() in words, for receivers: the OpenAPI webhook descriptions (payloads.py) carry it
ANSWERS = (f"Answer 2xx to acknowledge; {GONE} disables the subscription; a timeout, a connection error, "
           f"{TOO_MANY_REQUESTS} or 5xx is retried on the schedule, then dead-lettered; any other answer (3xx: "
           f"redirects are not followed, every other 4xx) is dead-lettered at once.")


RESULTS = ("delivered", "retry", "gone", "failed")  # what classify() answers: an attempt's result


def classify(status: int | None) -> str:
    """delivered | retry | gone | failed, for an HTTP status (None: timeout or connection error)."""
    if status is None or status == TOO_MANY_REQUESTS or status >= 500:
        return "retry"
    if 200 <= status < 300:
        return "delivered"
    return "gone" if status == GONE else "failed"  # 3xx too: redirects are not followed (SSRF)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def next_delay(schedule: Sequence[float], jitter: float, failed: int, retry_after: float | None) -> float | None:
    """Seconds until the attempt after the ``failed``-th failed one; None when the schedule is spent.

    The delay is scaled by a random factor in [1 - jitter, 1 + jitter] so deliveries that failed
    together (a receiver outage) do not all come back in the same instant, and is never shorter
    than what the receiver asked for in ``Retry-After``.
    """
    if failed > len(schedule):
        return None
    delay = float(schedule[failed - 1]) * random.uniform(1 - jitter, 1 + jitter)
    return max(delay, retry_after or 0.0)
