"""One run's view of the egress client: allow-list, redirects, caps and the trace (SPEC 3.3)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aiohttp import (
    ClientConnectorCertificateError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientError,
    ClientResponse,
    ClientSSLError,
    ClientTimeout,
    ConnectionTimeoutError,
)
from multidict import CIMultiDict
from yarl import URL

from gateway.egress.connect import REFUSALS, EgressRefusedError
from gateway.egress.policy import (
    METHODS,
    HostPattern,
    InvalidRequestError,
    host_allowed,
    validate_headers,
    validate_method,
    validate_url,
)
from gateway.redaction import is_secret_name
from runtime.host import HostCallError, HttpRequest, HttpResponse
from runtime.model import HttpTraceEntry
from runtime.redact import REDACTED, Redactor

if TYPE_CHECKING:
    from gateway.egress.client import EgressClient


# --- one run's view ----------------------------------------------------------------------

_CROSS_ORIGIN_SAFE: Final = frozenset(
    {"accept", "accept-language", "accept-encoding", "user-agent"}
)
_BODY_HEADERS: Final = frozenset(
    {"content-type", "content-encoding", "content-language", "content-location"}
)
# Framing and hop-by-hop headers are the gateway's business; a script's are dropped.
_MANAGED: Final = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te",
        "trailer", "upgrade", "proxy-authorization", "proxy-connection", "expect",
    }
)  # fmt: skip
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CHUNK: Final = 64 * 1024
_DEFAULT_BODY_TYPE: Final = "text/plain;charset=UTF-8"

EGRESS_REFUSED: Final = "egress_refused"
"""The code of a request the policy refused (an undeclared host, a forbidden address)."""
UPSTREAM_FAILURES: Final = frozenset({"upstream_unreachable", "upstream_timeout"})
"""The codes of a request that got no answer from its upstream: the name did not resolve,
the connection was refused or reset, TLS failed, or it timed out. Worth retrying later,
unlike a refusal or a bad request, which are the script's or the connector's doing."""


def _secret_key(name: str) -> bool:
    return is_secret_name(name)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace every secret of the run (plain or encoded) in `text` by `[redacted]`."""
    return Redactor(secrets).text(text)


def redact_url(url: URL, secrets: Sequence[str] = ()) -> str:
    """Render `url` for a trace: no userinfo or fragment, secret-looking query values
    and every value in `secrets` replaced by `[redacted]`."""
    return _redact_url(url, Redactor(secrets))


def _redact_url(url: URL, redactor: Redactor) -> str:
    text = str(url.with_user(None).with_query(None).with_fragment(None))
    if url.raw_query_string:
        items = []
        for item in url.raw_query_string.split("&"):
            name, sep, _ = item.partition("=")
            items.append(f"{name}={REDACTED}" if sep and _secret_key(name) else item)
        text += "?" + "&".join(items)
    return redactor.text(text)


@dataclass(frozen=True, slots=True)
class _Hop:
    """One request on the way: the original or a redirect target."""

    method: str
    url: URL
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


@dataclass(frozen=True, slots=True)
class _Answer:
    """A hop's response: a redirect (`location`) or the final response."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    location: str | None = None


class _Failure(Exception):
    """A hop failed; `_exchange` turns it into a `HostCallError` with the trace."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _prepare_headers(
    headers: Sequence[tuple[str, str]], body: bytes | None
) -> tuple[tuple[str, str], ...]:
    kept = tuple((n, v) for n, v in headers if n.lower() not in _MANAGED)
    if body is not None and not any(n.lower() == "content-type" for n, _ in kept):
        # What a browser's XMLHttpRequest sends for a string body (SPEC 3.4).
        kept += (("Content-Type", _DEFAULT_BODY_TYPE),)
    return kept


def _redirected(hop: _Hop, status: int, target: URL) -> _Hop:
    """Apply the redirect method rules (RFC 9110 15.4) and the cross-origin header rule."""
    method, body = hop.method, hop.body
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
    headers = hop.headers
    if body is None:
        headers = tuple((n, v) for n, v in headers if n.lower() not in _BODY_HEADERS)
    origin = (hop.url.scheme, hop.url.raw_host, hop.url.port)
    if (target.scheme, target.raw_host, target.port) != origin:
        # E5: credentials, cookies and anything injected stay with their origin.
        safe = _CROSS_ORIGIN_SAFE | ({"content-type"} if body is not None else set())
        headers = tuple((n, v) for n, v in headers if n.lower() in safe)
    return _Hop(method, target, headers, body)


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


class EgressSession:
    """One run's `HttpService`: the shared pool under the run's `allowed_hosts`."""

    def __init__(
        self,
        client: EgressClient,
        patterns: tuple[HostPattern, ...] | None,
        *,
        secrets: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._patterns = patterns
        self._redactor = Redactor(secrets)  # once per run, not per message

    async def send(self, request: HttpRequest, *, max_body_bytes: int) -> HttpResponse:
        """Send `request`, following at most `max_redirects` redirects, each re-checked.

        Raises:
            HostCallError: `invalid_request`, `egress_refused`, `upstream_timeout`,
                `upstream_unreachable`, `response_too_large` or `too_many_redirects`,
                with one trace entry per hop (refused ones included).
        """
        trace: list[HttpTraceEntry] = []
        deadline = time.monotonic() + self._client.total_timeout
        hop = self._first_hop(request, trace)
        limit = self._client.max_redirects
        for count in range(limit + 1):
            self._check_host(hop, trace)
            answer = await self._exchange(hop, max_body_bytes, deadline, trace)
            if answer.location is None:
                return HttpResponse(answer.status, answer.headers, answer.body, list(trace))
            if count < limit:
                hop = self._follow(hop, answer, trace)
        trace[-1] = trace[-1].model_copy(update={"error": "too_many_redirects"})
        message = f"more than {limit} redirects (the last from host {hop.url.raw_host})"
        raise HostCallError("too_many_redirects", self._redactor.text(message), trace=trace)

    def _first_hop(self, request: HttpRequest, trace: list[HttpTraceEntry]) -> _Hop:
        method = request.method.upper() if request.method.upper() in METHODS else "?"
        try:
            url = validate_url(request.url)
        except InvalidRequestError as exc:
            raise self._refused(method, None, "invalid_request", str(exc), trace) from None
        try:
            validate_method(request.method)
            headers = validate_headers(request.headers)
        except InvalidRequestError as exc:
            raise self._refused(method, url, "invalid_request", str(exc), trace) from None
        body = None if request.body is None else request.body.encode("utf-8")
        return _Hop(method, url, _prepare_headers(headers, body), body)

    def _check_host(self, hop: _Hop, trace: list[HttpTraceEntry]) -> None:
        host, port = hop.url.raw_host or "", hop.url.port or 0
        if host_allowed(host, port, self._patterns):
            return
        hints = self._client.hints
        endpoint = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if host_allowed(host, 0, [HostPattern(p.host, p.wildcard) for p in self._patterns or ()]):
            message = hints.port.format(host=host, port=port, endpoint=endpoint)
        else:
            message = hints.host.format(host=host, port=port, endpoint=endpoint)
        raise self._refused(hop.method, hop.url, "egress_refused", message, trace)

    def _follow(self, hop: _Hop, answer: _Answer, trace: list[HttpTraceEntry]) -> _Hop:
        try:
            target = validate_url(str(hop.url.join(URL(answer.location or ""))))
        except InvalidRequestError as exc:
            reason = str(exc)
        except ValueError:
            reason = "the target is not a valid URL"
        else:
            return _redirected(hop, answer.status, target)
        message = f"redirect from host {hop.url.raw_host} refused: {reason}"
        raise self._refused(hop.method, None, "egress_refused", message, trace)

    def _refused(
        self, method: str, url: URL | None, code: str, message: str, trace: list[HttpTraceEntry]
    ) -> HostCallError:
        shown = "[invalid url]" if url is None else _redact_url(url, self._redactor)
        trace.append(
            HttpTraceEntry(method=method, url=shown, status=None, duration_ms=0.0, error=code)
        )
        return HostCallError(code, self._redactor.text(message), trace=trace)

    async def _exchange(
        self, hop: _Hop, cap: int, deadline: float, trace: list[HttpTraceEntry]
    ) -> _Answer:
        started = time.monotonic()
        try:
            answer = await self._dispatch(hop, cap, deadline)
        except _Failure as failure:
            trace.append(self._entry(hop, started, failure.status, failure.code))
            message = self._redactor.text(failure.message)
            raise HostCallError(failure.code, message, trace=trace) from None
        trace.append(self._entry(hop, started, answer.status, None))
        return answer

    def _entry(
        self, hop: _Hop, started: float, status: int | None, error: str | None
    ) -> HttpTraceEntry:
        return HttpTraceEntry(
            method=hop.method,
            url=_redact_url(hop.url, self._redactor),
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000, 3),
            error=error,
        )

    async def _dispatch(self, hop: _Hop, cap: int, deadline: float) -> _Answer:
        host, total = hop.url.raw_host or "", self._client.total_timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Failure("upstream_timeout", f"the request did not complete within {total:g} s")
        connect = min(self._client.connect_timeout, remaining)
        refusals: list[str] = []
        token = REFUSALS.set(refusals)
        try:
            async with self._client.http().request(
                hop.method,
                hop.url,
                headers=CIMultiDict(hop.headers),
                data=hop.body,
                allow_redirects=False,
                timeout=ClientTimeout(total=remaining, connect=connect, sock_connect=connect),
            ) as response:
                return await _answer(response, hop, cap)
        except ClientConnectorError as exc:
            raise _connect_failure(exc, hop.url, refusals) from None
        except ConnectionTimeoutError:
            raise _Failure("upstream_timeout", f"connecting to host {host} timed out") from None
        except TimeoutError:
            message = f"host {host} did not answer within {total:g} s"
            raise _Failure("upstream_timeout", message) from None
        except ClientError as exc:
            message = f"connection to host {host} failed ({type(exc).__name__})"
            raise _Failure("upstream_unreachable", message) from None
        except ValueError:
            # aiohttp's own last-line checks; ours above should have caught it first.
            raise _Failure("invalid_request", "the HTTP client refused the request") from None
        finally:
            REFUSALS.reset(token)


def _connect_failure(exc: ClientConnectorError, url: URL, refusals: list[str]) -> _Failure:
    host = url.raw_host
    if refusals or isinstance(exc.os_error, EgressRefusedError):
        reason = refusals[0] if refusals else str(exc.os_error)
        return _Failure(
            "egress_refused", f"connection to {host} refused by the egress policy: {reason}"
        )
    if isinstance(exc, ClientConnectorDNSError):
        return _Failure("upstream_unreachable", f"host {host} could not be resolved")
    if isinstance(exc, ClientConnectorCertificateError):
        return _Failure(
            "upstream_unreachable", f"the TLS certificate of host {host} is not trusted"
        )
    if isinstance(exc, ClientSSLError):
        return _Failure("upstream_unreachable", f"the TLS handshake with host {host} failed")
    reason = exc.os_error.strerror or "connection failed"
    return _Failure("upstream_unreachable", f"cannot connect to host {host}:{url.port} ({reason})")


async def _answer(response: ClientResponse, hop: _Hop, cap: int) -> _Answer:
    location = response.headers.get("Location") if response.status in _REDIRECTS else None
    if location is not None:
        return _Answer(response.status, location=location)
    body = b"" if hop.method == "HEAD" else await _read_capped(response, hop, cap)
    headers = tuple((str(k), v) for k, v in response.headers.items())
    return _Answer(response.status, headers, _decode(body, response.charset))


async def _read_capped(response: ClientResponse, hop: _Hop, cap: int) -> bytes:
    """Read the body as it streams in, failing as soon as it passes `cap` (E7)."""
    too_large = _Failure(
        "response_too_large",
        f"the response of host {hop.url.raw_host} is larger than {cap} bytes",
        status=response.status,
    )
    length = response.content_length
    if length is not None and length > cap:
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        if len(body) + len(chunk) > cap:
            raise too_large
        body += chunk
    return bytes(body)
