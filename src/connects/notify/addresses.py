"""Where a webhook may be sent: public addresses only (R50).

A webhook target names a host the server will connect to, so a target on loopback, a
private network, link-local (the cloud metadata service at 169.254.169.254) or the
unspecified address would let an account owner make the server reach inside its own
network. Such targets are refused when a channel is added and again at every delivery,
after DNS resolution: a name may resolve elsewhere later (DNS rebinding), so delivery
checks every address the name resolves to and connects to the checked one. The
operator may allow them for development and tests (``CONNECTS_ALLOW_PRIVATE_WEBHOOKS``).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class NotPublic(Exception):
    """The target's host is, or resolves to, an address that is not public."""


class Unresolved(Exception):
    """The target's host name does not resolve."""


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address (an IPv4-mapped IPv6 address is
    judged by its IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def literal(host: str) -> IPAddress | None:
    """``host`` as an IP address, or None when it is a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, or :class:`Unresolved`."""
    found = literal(host)
    if found is not None:
        return [found]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolved(host) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = literal(str(info[4][0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Unresolved(host)
    return addresses


def public_addresses(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host``, all public, or :class:`NotPublic` if any is not."""
    addresses = resolve(host, port)
    if not all(is_public(a) for a in addresses):
        raise NotPublic(host)
    return addresses


def check_target(url: str) -> None:
    """Refuse (:class:`NotPublic`) a webhook URL whose host is or resolves to an address
    that is not public. A name that does not resolve now is let through: delivery
    resolves it again and checks what it finds then."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 443
    try:
        public_addresses(host, port)
    except Unresolved:
        return


def pinned(url: str, allow_private: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` aimed at one checked address of its host: the URL to request, the
    ``Host`` header and the TLS server name to keep.

    Every address the host resolves to must be public (unless ``allow_private``;
    otherwise :class:`NotPublic`), and the connection goes to the one checked, so a
    second lookup cannot swap it. :class:`Unresolved` when the name does not resolve.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = resolve(host, port) if allow_private else public_addresses(host, port)
    address = found[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    target = parts._replace(netloc=netloc).geturl()
    host_header = f"{host}:{parts.port}" if parts.port else host
    if ":" in host:  # an IPv6 literal keeps its brackets in the Host header
        host_header = f"[{host}]" + (f":{parts.port}" if parts.port else "")
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return target, {"Host": host_header}, extensions
