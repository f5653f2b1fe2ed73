"""The egress client: every upstream request of every run goes through it (SPEC 3.3).

One shared `aiohttp.ClientSession` and connection pool serve all runs; `session()` hands
each run a view bound to its connector's `allowed_hosts` and secrets (`session.py`); the
address check on every dialled address is in `connect.py`.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from types import TracebackType

from aiohttp import (
    ClientSession,
    ClientTimeout,
    DummyCookieJar,
    TCPConnector,
    ThreadedResolver,
)
from aiohttp.abc import AbstractResolver

from gateway.egress.connect import PinningResolver, make_socket_factory
from gateway.egress.policy import (
    AddressPolicy,
    RefusalHints,
    parse_host_patterns,
)
from gateway.egress.session import EgressSession


class EgressClient:
    """Owns the gateway's one upstream connection pool and its policy.

    Use as `async with EgressClient(policy) as client:` (or `start()`/`close()`), then
    `client.session(allowed_hosts, secrets=...)` per run. Proxy environment variables
    are ignored (E8); TLS uses the system trust store (honouring `SSL_CERT_FILE`) plus
    `ca_file`, and is never disabled. Cookies are never stored: runs share the pool.

    Args:
        policy: the operator's address rules.
        ca_file: an extra PEM bundle of trusted CAs.
        connect_timeout: seconds to establish a connection.
        total_timeout: seconds for a whole `send`, redirects and body included.
        max_redirects: redirects followed per `send`.
        resolver: DNS resolver to use (the client closes it); aiohttp's default if None.
        hints: how refusals name what would allow a call (the service's words by default).

    Raises:
        ValueError: a timeout is not positive or `max_redirects` is negative.
        OSError: `ca_file` cannot be read.
        ssl.SSLError: `ca_file` holds no valid certificate.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        ca_file: str | None = None,
        connect_timeout: float = 10,
        total_timeout: float = 60,
        max_redirects: int = 5,
        resolver: AbstractResolver | None = None,
        hints: RefusalHints | None = None,
    ) -> None:
        if connect_timeout <= 0 or total_timeout <= 0 or max_redirects < 0:
            raise ValueError("timeouts must be positive and max_redirects not negative")
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.hints = hints or RefusalHints()
        self._ssl = ssl.create_default_context()
        if ca_file is not None:
            self._ssl.load_verify_locations(cafile=ca_file)
        self._resolver = resolver
        self._session: ClientSession | None = None
        self._pinning: PinningResolver | None = None
        self._closed = False

    async def start(self) -> None:
        """Create the connection pool (also done lazily by the first request)."""
        self.http()

    async def close(self) -> None:
        """Close the pool and the resolver; later requests fail."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
        # The connector does not close a resolver it was handed.
        if self._pinning is not None:
            await self._pinning.close()

    async def __aenter__(self) -> EgressClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def http(self) -> ClientSession:
        """Return the shared `ClientSession`, creating it on first use (inside the loop).

        Raises:
            RuntimeError: the client is closed.
        """
        if self._closed:
            raise RuntimeError("the egress client is closed")
        if self._session is None:
            resolver = PinningResolver(self.policy, self._resolver or ThreadedResolver())
            connector = TCPConnector(
                ssl=self._ssl,
                resolver=resolver,
                socket_factory=make_socket_factory(self.policy, self.hints),
            )
            self._session = ClientSession(
                connector=connector,
                trust_env=False,
                cookie_jar=DummyCookieJar(),
                timeout=ClientTimeout(
                    total=self.total_timeout,
                    connect=self.connect_timeout,
                    sock_connect=self.connect_timeout,
                ),
            )
            self._pinning = resolver
        return self._session

    def session(
        self, allowed_hosts: Sequence[str] | None, *, secrets: Sequence[str] = ()
    ) -> EgressSession:
        """Return the `HttpService` of one run.

        Args:
            allowed_hosts: the connector's host patterns; None allows every host (the
                local `script run` without `--allow-host`), an empty tuple none.
            secrets: values redacted from traces and messages.

        Raises:
            ValueError: a host pattern is malformed.
        """
        return EgressSession(self, parse_host_patterns(allowed_hosts), secrets=secrets)
