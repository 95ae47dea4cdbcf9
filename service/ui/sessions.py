"""Sessions of the /ui page: a signed cookie that every replica can check, and the CSRF token of its forms.

A session cookie is ``base64url(payload) "." base64url(HMAC-SHA256(secret, payload))``, the payload a
small JSON object: ``k`` the id of the key it was opened with (a reviewer or admin key, whose kinds hold
the ``review`` scope: service/access.py; an HMAC of the key, never the key),
``n`` a random nonce, ``e`` its expiry (unix seconds). Nothing is kept per process, so any replica with
the same secret accepts it. The secret is ``EMODRIFT_UI_SESSION_SECRET``, or else derived from the
reviewer and admin keys: replicas configured alike agree without another secret to distribute, and
changing those keys signs everyone out. A session is refused once it expired, once the key it was opened with is no longer
configured (removing a key signs out its people), or after sign-out (the routes remember its nonce in
Redis until it would have expired).

With no API key configured at all (dev mode, the API is open too) a session is opened without a key,
``k = "open"``; the derived secret is then a constant, so such sessions prove nothing but still carry
the CSRF token that stops another site from posting to the page.

The CSRF token of a session is ``HMAC(secret, "csrf:" + nonce)``: the same in every form of the session,
unknown to another site (which can read neither the HttpOnly cookie nor the page), checked on every POST.

>>> codec = SessionCodec(b"s" * 32, keys=["k1"], open_mode=False, lifetime=60)
>>> cookie, session = codec.issue("k1", now=1000)
>>> codec.read(cookie, now=1001) == session, codec.read(cookie, now=1061)
(True, None)
>>> codec.read(cookie[:-2] + "AA", now=1001), codec.issue("nope", now=1000)
(None, None)
>>> SessionCodec(b"s" * 32, keys=["k2"], open_mode=False, lifetime=60).read(cookie, now=1001) is None
True
>>> codec.csrf_ok(session, codec.csrf_token(session)), codec.csrf_ok(session, ""), codec.csrf_ok(session, None)
(True, False, False)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from service import access
from service.config import Settings

COOKIE = "emodrift_session"
OPEN = "open"


@dataclass(frozen=True)
class Session:
    key_id: str
    nonce: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Issues and checks session cookies and CSRF tokens; pure, no I/O (revocation lives in the routes)."""

    def __init__(self, secret: bytes, *, keys: list[str], open_mode: bool, lifetime: int) -> None:
        if len(secret) < 16:
            raise ValueError("the session secret must have at least 16 bytes")
        self._secret = secret
        self._keys = list(keys)  # the keys that may open a session
        self.open_mode = open_mode
        self.lifetime = lifetime
        self._valid_ids = {OPEN} if open_mode else {self.key_id(key) for key in keys}

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionCodec:
        keys = access.keys_with(settings, "review")
        if settings.ui_session_secret is not None:
            secret = settings.ui_session_secret.get_secret_value().encode()
        else:
            secret = hashlib.sha256(b"emodrift /ui session secret\0" + "\0".join(sorted(keys)).encode()).digest()
        return cls(secret, keys=keys, open_mode=not access.configured(settings), lifetime=settings.ui_session_seconds)

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose + b":" + data, hashlib.sha256).digest()

    def key_id(self, key: str) -> str:
        return self._mac(b"key", key.encode()).hex()[:24]

    def opens(self, given: str) -> bool:
        return access.matches(given, self._keys)

    def issue(self, key: str | None, now: float) -> tuple[str, Session] | None:
        """A new session for someone who presented ``key`` (None in dev mode); None if it does not open one."""
        if self.open_mode:
            key_id = OPEN
        elif key and self.opens(key):
            key_id = self.key_id(key)
        else:
            return None
        session = Session(key_id, secrets.token_urlsafe(18), int(now) + self.lifetime)
        payload = json.dumps({"k": session.key_id, "n": session.nonce, "e": session.expires},
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(b'session', payload))}", session

    def read(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie carries, or None: absent, malformed, forged, expired, or its key is gone."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 512:
            return None
        body, mac = cookie.split(".")
        try:
            payload, given_mac = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(given_mac, self._mac(b"session", payload)):
            return None
        try:
            fields = json.loads(payload)
            session = Session(str(fields["k"]), str(fields["n"]), int(fields["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= now or session.key_id not in self._valid_ids:
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac(b"csrf", session.nonce.encode()))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token).encode(), self.csrf_token(session).encode())
