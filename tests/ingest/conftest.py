"""Fixtures for outbound HTTP: a fake DNS and a log of connections that allows loopback only.

Nothing here may leave the machine. Every test in this folder runs with
- `dns`: socket.getaddrinfo answers made-up names from a table the test fills, resolves IP
  literals and "localhost" locally, and fails every other name, so no DNS query is sent;
- `connections`: socket.create_connection (what httpx connects with) records each target and
  refuses, before any packet, every address that is not loopback.
A made-up name can be made to pass the SSRF guard with `pretend_public`, which lets the guard
treat 127.0.0.1 alone as public; the redirect and rebinding tests rely on it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from ipaddress import ip_address

import pytest

from transcoder.ingest import addresses as guard

PRETEND_PUBLIC = ip_address("127.0.0.1")


class ForbiddenConnection(AssertionError):
    """A test tried to connect somewhere other than loopback."""


@dataclass
class FakeDNS:
    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def add(self, name: str, *answers: list[str]) -> None:
        """Answer `name` with each list in turn; the last one repeats."""
        self.answers[name] = list(answers)


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS()
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in fake.answers:
            fake.lookups.append(name)
            answers = fake.answers[name]
            ips = answers.pop(0) if len(answers) > 1 else answers[0]
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (ip, port, 0, 0) if ":" in ip else (ip, port),
                )
                for ip in ips
            ]
        if name == "localhost":
            return real(host, port, family, type, proto, flags)
        # IP literals only: AI_NUMERICHOST makes the resolver fail rather than ask a server.
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    made: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        host, port = address[0], address[1]
        try:
            loopback = ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ForbiddenConnection(f"a test tried to connect to {host}:{port}")
        made.append((host, port))
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return made


@pytest.fixture
def pretend_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the guard treat 127.0.0.1 (and nothing else private) as a public address."""
    real = guard.is_public
    monkeypatch.setattr(guard, "is_public", lambda a: a == PRETEND_PUBLIC or real(a))
