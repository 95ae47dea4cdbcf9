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

A form that outlived its session (it expired, or was signed out in another tab) carries no valid token,
and what it held is lost unless the person can send it again after signing in. Its *seal*,
``nonce "." expiry "." base64url(HMAC(secret, "form:" + key id + ":" + nonce + ":" + expiry))``, lets
the page keep it for them: a session opened with the same key, within one session lifetime of the
sealing session's end, recognises the seal, and only then is the form's content shown again (as a draft
to check and send, never acted on: acting still takes a valid session and its CSRF token). Another site
cannot read the page, and a seal of another key's session is not recognised.

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
>>> _, again = codec.issue("k1", now=1070)  # the first session expired at 1060
>>> codec.sealed(codec.seal(session), again, now=1070), codec.sealed(codec.seal(session), again, now=1121)
(True, False)
>>> two = SessionCodec(b"s" * 32, keys=["k1", "k2"], open_mode=False, lifetime=60)
>>> two.sealed(two.seal(session), two.issue("k2", now=1070)[1], now=1070), two.sealed("x.1.y", again, now=1070)
(False, False)
>>> codec.sealed("x.\u00b2.y", again, now=1070), codec.sealed(None, again, now=1070)  # '²' is a digit, not ASCII
(False, False)
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
# Over HTTPS the cookie is a __Host- one (Secure, host-only, Path=/): no sibling domain's page can set a cookie
# of that name, nor a plain-HTTP page of this host on another port (an audit planted its own session cookie
# both ways and swapped a reviewer's session). Over plain HTTP (a developer's machine) no prefix can hold.
SECURE_COOKIE = "__Host-" + COOKIE
OPEN = "open"


@dataclass(frozen=True)
class Session:
    key_id: str
    nonce: str
    expires: int
    label: str | None = None  # access.key_label of its key: who acted, on what it changes (None: dev mode)


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
        label = access.key_label(key) if key and not self.open_mode else None
        session = Session(key_id, secrets.token_urlsafe(18), int(now) + self.lifetime, label)
        payload = json.dumps({"k": session.key_id, "n": session.nonce, "e": session.expires, "l": label},
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
            label = fields.get("l")  # absent from cookies issued before it was recorded
            session = Session(str(fields["k"]), str(fields["n"]), int(fields["e"]), None if label is None else str(label))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= now or session.key_id not in self._valid_ids:
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac(b"csrf", session.nonce.encode()))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token).encode(), self.csrf_token(session).encode())

    def _form_mac(self, key_id: str, nonce: str, expires: int) -> str:
        return _b64(self._mac(b"form", f"{key_id}:{nonce}:{expires}".encode()))

    def seal(self, session: Session) -> str:
        """The seal of this session's forms (the module docstring says what it is for)."""
        return f"{session.nonce}.{session.expires}.{self._form_mac(session.key_id, session.nonce, session.expires)}"

    def sealed(self, seal: str | None, session: Session, now: float) -> bool:
        """Was ``seal`` given to a form of a session opened with ``session``'s key, one that ended no
        longer than a session lifetime ago?"""
        parts = (seal or "").split(".")
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 12:
            return False
        nonce, expires, mac = parts[0], int(parts[1]), parts[2]
        return expires + self.lifetime > now and hmac.compare_digest(
            mac.encode(), self._form_mac(session.key_id, nonce, expires).encode())
