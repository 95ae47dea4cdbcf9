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


NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))  # RFC 6052, RFC 8215


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address carries, which is where packets to it end up:
    IPv4-mapped (``::ffff:a.b.c.d``), 6to4 (``2002:AABB:CCDD::``), Teredo (the client, de-obfuscated)
    and NAT64 (``64:ff9b::a.b.c.d``, the last 32 bits).

    >>> str(embedded_ipv4(ipaddress.IPv6Address("2002:7f00:1::")))
    '127.0.0.1'
    >>> str(embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a9fe:a9fe")))
    '169.254.169.254'
    >>> embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111")) is None
    True
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
        return _refusal(inner)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-global"


def has_credentials(url: str) -> bool:
    """Whether the URL carries ``user[:password]@`` (which GET /v1/webhooks would show)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def redacted(url: str) -> str:
    """The URL without the credentials of its authority (subscriptions stored before they were refused).

    >>> redacted("https://u:p@example.com:8443/hook?x=1")
    'https://***@example.com:8443/hook?x=1'
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


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
