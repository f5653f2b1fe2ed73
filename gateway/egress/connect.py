"""Connecting: the socket factory that checks every dialled address, and name pinning.

The address check sits in the connector's socket factory, so it sees the address actually
dialled, whether it came from DNS, from a `resolve` pin or from an IP-literal URL
(THREATS E1-E3).
"""

from __future__ import annotations

import socket
from contextvars import ContextVar
from typing import Final

from aiohttp import (
    SocketFactoryType,
)
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.egress.policy import (
    AddressPolicy,
    check_address,
)

# The refusals seen while the current task connects; set per hop by `EgressSession`
# so a refusal is recognised whatever way aiohappyeyeballs wraps the OSError.
REFUSALS: Final[ContextVar[list[str] | None]] = ContextVar("egress_refusals", default=None)


class EgressRefusedError(PermissionError):
    """The socket factory refused to dial an address; the message is the reason."""


def make_socket_factory(policy: AddressPolicy) -> SocketFactoryType:
    """Return a socket factory that refuses addresses `policy` does not admit.

    aiohttp calls it with the resolved `addrinfo` right before `connect()`, for names
    and IP literals alike: the single choke point of the address check.
    """

    def guarded_socket(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        reason = check_address(str(sockaddr[0]), int(str(sockaddr[1])), policy)
        if reason is not None:
            refusals = REFUSALS.get()
            if refusals is not None:
                refusals.append(reason)
            raise EgressRefusedError(reason)
        return socket.socket(family=family, type=type_, proto=proto)

    return guarded_socket


class PinningResolver(AbstractResolver):
    """Answers `resolve` pins itself and asks the wrapped resolver for other names."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the pinned addresses of `host:port`, or resolve it normally."""
        pinned = self._policy.pinned(host, port)
        if pinned is None:
            return await self._inner.resolve(host, port, family)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET if address.version == 4 else socket.AF_INET6,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in pinned
        ]

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()
