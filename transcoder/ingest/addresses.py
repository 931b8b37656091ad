"""The SSRF guard: which URLs the farm may connect to, and at which addresses.

A URL passes when its scheme is http or https and every address its host resolves to is a
public unicast address. The caller then connects to one of the returned addresses itself
(see transcoder.ingest.pinned), so a second DNS answer can never change where it goes.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import httpx

from transcoder.errors import URLRefused

Address = IPv4Address | IPv6Address

SCHEMES = ("http", "https")

# Refused even where the running Python's `is_global` tables say otherwise; they have
# changed between releases, and a guard should not depend on the patch level.
BLOCKED_NETWORKS = tuple(
    ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/96",  # unspecified, loopback, IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)

# IPv6 forms that carry an IPv4 address a gateway may forward to.
NAT64 = ip_network("64:ff9b::/96")


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address, judged on its IPv4 form where it has one."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public(embedded):
            return False
    special = (
        address.is_private,
        address.is_loopback,
        address.is_link_local,
        address.is_multicast,
        address.is_unspecified,
        address.is_reserved,
    )
    if any(special) or not address.is_global:
        return False
    return not any(address in network for network in BLOCKED_NETWORKS)


def check_public_url(url: str, *, allow_private: bool = False) -> list[Address]:
    """The addresses a URL may be fetched from; URLRefused unless every one is public.

    allow_private skips only the address check (tests against a local server); the scheme
    and host checks still apply.
    """
    parsed = parse_url(url)
    host = parsed.raw_host.decode("ascii")
    addresses = resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    if allow_private:
        return addresses
    for address in addresses:
        if not is_public(address):
            raise URLRefused(
                f"refused: {safe_url(url)} resolves to {address}, which is not a public address"
            )
    return addresses


def parse_url(url: str) -> httpx.URL:
    """Parse with the HTTP client's own parser, so the guard and the request agree on the host."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, UnicodeError) as exc:
        raise URLRefused(f"refused: {safe_url(url)} is not a valid URL") from exc
    if parsed.scheme not in SCHEMES:
        raise URLRefused(f"refused: {safe_url(url)} is not an http or https URL")
    if not parsed.raw_host:
        raise URLRefused(f"refused: {safe_url(url)} has no host")
    return parsed


def resolve(host: str, port: int) -> list[Address]:
    """Every address of a host, in the resolver's order, without duplicates."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise URLRefused(f"refused: cannot resolve host {host}") from exc
    addresses: list[Address] = []
    for family, *_, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise URLRefused(f"refused: cannot resolve host {host}")
    return addresses


def safe_url(url: str | httpx.URL) -> str:
    """scheme://host[:port]/path of a URL, for logs and messages: no credentials, no query."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        netloc = parsed.netloc.decode("ascii")
    except (httpx.InvalidURL, TypeError, UnicodeError):
        return "<invalid URL>"
    path = parsed.raw_path.decode("ascii").split("?", 1)[0]
    return f"{parsed.scheme}://{netloc}{path}"


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address inside a 6to4 or NAT64 address, if it is one."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None
