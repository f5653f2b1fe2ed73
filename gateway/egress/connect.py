"""Connecting: the socket factory that checks every dialled address, and name pinning.

The address check sits in the connector's socket factory, so it sees the address actually
dialled, whether it came from DNS, from a `resolve` pin, a `connect_to` route or from an
IP-literal URL (THREATS E1-E3).
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
    RefusalHints,
    check_address,
    literal_address,
)

# The refusals seen while the current task connects; set per hop by `EgressSession`
# so a refusal is recognised whatever way aiohappyeyeballs wraps the OSError.
REFUSALS: Final[ContextVar[list[str] | None]] = ContextVar("egress_refusals", default=None)


class EgressRefusedError(PermissionError):
    """The socket factory refused to dial an address; the message is the reason."""


def make_socket_factory(
    policy: AddressPolicy, hints: RefusalHints | None = None
) -> SocketFactoryType:
    """Return a socket factory that refuses addresses `policy` does not admit.

    aiohttp calls it with the resolved `addrinfo` right before `connect()`, for names
    and IP literals alike: the single choke point of the address check. A refusal's
    reason ends with what `hints` says would admit the address.
    """
    hints = hints or RefusalHints()

    def guarded_socket(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address, port = str(sockaddr[0]), int(str(sockaddr[1]))
        reason = check_address(address, port, policy)
        if reason is not None:
            reason += hints.address(address, port)
            refusals = REFUSALS.get()
            if refusals is not None:
                refusals.append(reason)
            raise EgressRefusedError(reason)
        return socket.socket(family=family, type=type_, proto=proto)

    return guarded_socket


class PinningResolver(AbstractResolver):
    """Answers `connect_to` routes and `resolve` pins itself; asks the wrapped resolver otherwise.

    aiohttp dials the address and port a resolver answers, but keeps the URL's host for
    SNI, certificate checks and the `Host` header: so a route changes where a request goes,
    never what it claims to be.
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver) -> None:
        self._policy = policy
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return where `host:port` is dialled: its route's target, its pin, or DNS's answer.

        A route's target host is itself pinned or resolved, as curl does.
        """
        route = self._policy.routed(host, port)
        target, target_port = (host, port) if route is None else route
        literal = None if route is None else literal_address(target)
        addresses = (literal,) if literal is not None else self._policy.pinned(target, target_port)
        if addresses is None:
            return await self._inner.resolve(target, target_port, family)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=target_port,
                family=socket.AF_INET if address.version == 4 else socket.AF_INET6,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()
