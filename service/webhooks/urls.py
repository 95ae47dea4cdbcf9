"""Which receiver URLs a subscription may name: http(s) to public addresses only (an SSRF guard).

A webhook makes the service send requests on a client's behalf, so a URL that resolves to loopback,
a private network, link-local (cloud metadata at 169.254.169.254), multicast or reserved space would
let a client probe our network. Every address the host resolves to must be public; the operator may
allow private ones (``EMODRIFT_WEBHOOK_ALLOW_PRIVATE_URLS``) for receivers inside the same network.
The dispatcher checks again before each attempt, so a name that later resolves elsewhere is caught
(not airtight against DNS rebinding between our lookup and httpx's; pin addresses at an egress proxy
where that matters).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import httpx

from service.errors import InvalidWebhookUrl

MAX_URL_LENGTH = 2048


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-global"


async def check_url(url: str, *, allow_private: bool) -> str:
    """The URL unchanged when it may receive webhooks; InvalidWebhookUrl (422) saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidWebhookUrl(f"url is malformed: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("url must be http:// or https://")
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrl("url has no host")
    if allow_private:
        return url
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidWebhookUrl(f"host {host!r} does not resolve") from exc
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])  # drop an IPv6 zone id
        reason = _refusal(address)
        if reason:
            raise InvalidWebhookUrl(f"host {host!r} resolves to a {reason} address ({address}); "
                                    "set EMODRIFT_WEBHOOK_ALLOW_PRIVATE_URLS=true to allow it")
    return url


def receiver_host(url: str | httpx.URL) -> str:
    """How a receiver appears in logs: scheme, host and port; never credentials, path or query, where
    receivers' URLs often carry a token.

    >>> receiver_host("https://hooks.example.com:8443/t/abc123?key=s3cret")
    'https://hooks.example.com:8443'
    >>> receiver_host("http://user:pw@10.0.0.5/x"), receiver_host("not a url")
    ('http://10.0.0.5', '<unparsable url>')
    """
    try:
        parts = urlsplit(str(url))
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable url>"
    if not parts.scheme or not parts.hostname:
        return "<unparsable url>"
    return f"{parts.scheme}://{parts.hostname}{port}"


class HostOnly(logging.Filter):
    """httpx logs every request with its full URL ("HTTP Request: POST <url> ..."): keep the host."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, httpx.URL) for arg in record.args):
            record.args = tuple(receiver_host(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


HOST_ONLY = HostOnly()
