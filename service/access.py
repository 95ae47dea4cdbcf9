"""Who may do what: the kinds of API key and the scopes each holds (docs/access.md).

Three settings hold the keys, one per kind. A route needs one scope (``service/routes/deps.py``), the
/ui page the ``review`` scope (``service/ui/sessions.py``), and ``serve`` refuses a public address
while no key of any kind is configured (``service/cli.py``): all three read the table below.

>>> from service.config import Settings
>>> s = Settings(api_keys="i", reviewer_api_keys="r", admin_api_keys="a")
>>> [kind_of(s, key) for key in ("i", "r", "a", "x")]
['ingest', 'reviewer', 'admin', None]
>>> KINDS[kind_of(s, "r")]
('read', 'review')
>>> keys_with(s, "review"), configured(Settings())
(['r', 'a'], False)
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from service.config import Settings

# ingest: post images and observations; read: users' state and timelines, alerts; review: acknowledge
# and resolve alerts (the /ui page); admin: webhooks, erasure, the model
Scope = Literal["ingest", "read", "review", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "read", "review", "admin")
Kind = Literal["ingest", "reviewer", "admin"]

# A reviewer (a person in trust and safety) judges alerts without the keys of the machine that posts
# images: a leaked reviewer key cannot write posts, erase users or redirect webhooks, and a leaked
# ingest key cannot write verdicts (they are the service's measured precision).
KINDS: dict[Kind, tuple[Scope, ...]] = {
    "ingest": ("ingest", "read"),
    "reviewer": ("read", "review"),
    "admin": SCOPES,
}
# the setting that holds each kind's keys (its environment variable: EMODRIFT_ + upper case)
SETTING: dict[Kind, str] = {"ingest": "api_keys", "reviewer": "reviewer_api_keys", "admin": "admin_api_keys"}


def key_label(key: str) -> str:
    """Which key acted, as an alert records it (``acknowledged_by``, ``resolved_by``): the first 8 hex
    digits of the key's SHA-256, never the key. An operator finds a key's label with
    ``printf %s "$KEY" | sha256sum | cut -c1-8``.

    >>> key_label("reviewer-key-of-ann")
    'key:c1c446a3'
    """
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:8]


def env_name(kind: Kind) -> str:
    return f"EMODRIFT_{SETTING[kind].upper()}"


def _keys(settings: Settings, kind: Kind) -> list[str]:
    keys: list[str] = getattr(settings, SETTING[kind])
    return keys


def matches(given: str, keys: list[str]) -> bool:
    """Whether ``given`` is one of ``keys``, compared with every key, always: the time taken says nothing
    about which one nearly matched."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def configured(settings: Settings) -> bool:
    """Whether any key is configured: without one the API is open (and served on loopback only)."""
    return any(_keys(settings, kind) for kind in KINDS)


def kind_of(settings: Settings, given: str) -> Kind | None:
    """The kind of key ``given`` is, or None (Settings refuses a key configured for two kinds)."""
    found: Kind | None = None
    for kind in KINDS:  # every kind is compared, whichever matches
        if matches(given, _keys(settings, kind)):
            found = kind
    return found


def keys_with(settings: Settings, scope: Scope) -> list[str]:
    """Every configured key whose kind holds ``scope``."""
    return [key for kind, scopes in KINDS.items() if scope in scopes for key in _keys(settings, kind)]


def kinds_with(*scopes: str) -> list[Kind]:
    """The kinds of key that hold every one of ``scopes`` (all kinds when none is named)."""
    return [kind for kind, held in KINDS.items() if set(scopes) <= set(held)]
