"""Which addresses and hosts a run may reach (SPEC 3.3, THREATS E1-E4, E6).

Two independent gates decide whether a request leaves the gateway:

* the connector's `allowed_hosts` (`HostPattern`, `host_allowed`), checked on every URL
  and every redirect hop before anything is sent;
* the operator's `AddressPolicy` (`check_address`), checked on the address actually
  dialled, at connect time, by the egress client's socket factory.

Literal IPv4 hosts are read the way glibc's `inet_aton` reads them (`2130706433`,
`0x7f000001`, `0177.0.0.1` and `127.1` all mean 127.0.0.1), because that is what
`getaddrinfo` would dial.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Final

from yarl import URL

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Cloud metadata endpoints that no setting admits (AWS, ECS, Azure wireserver, Alibaba,
# Oracle); 169.254.169.254 also serves GCP and Azure IMDS.
_METADATA: Final[frozenset[IPAddress]] = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "168.63.129.16",
        "100.100.100.200",
        "192.0.0.192",
    )
)
_RFC1918: Final = tuple(IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL: Final = IPv6Network("fc00::/7")
_NAT64: Final = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = IPv6Network("::/96")

# Named non-global ranges, for clearer refusal messages; anything else that `ipaddress`
# does not call global is refused as "not globally routable".
_NAMED_RANGES: Final[tuple[tuple[IPNetwork, str], ...]] = tuple(
    (ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "in 'this network' (0.0.0.0/8)"),
        ("100.64.0.0/10", "shared address space (CGNAT, 100.64.0.0/10)"),
        ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
        ("fec0::/10", "site-local"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("2001:2::/48", "a benchmarking address"),
        ("100::/64", "discard-only (100::/64)"),
        ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
        ("5f00::/16", "reserved for SRv6 (5f00::/16)"),
    )
)

_DEC: Final = re.compile(r"[0-9]+")
_OCT: Final = re.compile(r"0[0-7]*")
_HEX: Final = re.compile(r"0[xX][0-9a-fA-F]+")
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def parse_ipv4_literal(text: str) -> IPv4Address | None:
    """Read `text` as glibc's `inet_aton` does, or return None.

    One to four dot-separated parts, each decimal, octal (leading `0`) or hex (`0x`); the
    last part fills the remaining bytes, so `127.1` is 127.0.0.1 and `2130706433` too.
    """
    parts = text.split(".")
    if len(parts) > 4 or "" in parts:
        return None
    values = [_inet_part(p) for p in parts]
    if any(v is None for v in values):
        return None
    *head, last = [v for v in values if v is not None]
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for i, value in enumerate(head):
        number += value << (8 * (3 - i))
    return IPv4Address(number)


def _inet_part(part: str) -> int | None:
    if _HEX.fullmatch(part):
        return int(part[2:], 16)
    if _OCT.fullmatch(part):
        return int(part, 8)
    if _DEC.fullmatch(part) and not part.startswith("0"):
        return int(part)
    return None


def literal_address(host: str) -> IPAddress | None:
    """Return the address a literal URL host means, or None for a name.

    IPv6 may be bracketed; IPv4 is read as `inet_aton` does, one trailing dot allowed.

    Raises:
        ValueError: an IPv6 literal with a zone id, or a host whose last label is a
            number but that is no valid IPv4 address (`1.2.3.4.5`, `08.1`).
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare:
        if "%" in bare:
            raise ValueError("IPv6 zone identifiers are not allowed")
        return IPv6Address(bare)
    bare = bare.removesuffix(".")
    address = parse_ipv4_literal(bare)
    if address is None and _NUMERIC_LABEL.fullmatch(bare.rsplit(".", 1)[-1]):
        raise ValueError("host ends in a number but is not a valid IPv4 address")
    return address


@functools.lru_cache(maxsize=4096)
def canonical_host(host: str) -> str:
    """Return `host` as the allow-list compares it: IDNA, lower case, canonical IP.

    Every request checks its host two or three times, and scripts call few hosts: the
    answers are kept (a refusal is not, it raises).

    Raises:
        ValueError: the host is empty or not a valid name or address.
    """
    address = literal_address(host)
    if address is not None:
        return str(address)
    name = host.removesuffix(".")
    try:
        encoded = URL.build(scheme="http", host=name).raw_host or ""
    except (ValueError, UnicodeError) as exc:
        raise ValueError("host is not a valid name") from exc
    encoded = encoded.lower()
    if not _HOST_NAME.fullmatch(encoded):
        raise ValueError("host is not a valid name")
    return encoded


def split_host_port(text: str) -> tuple[str, int | None]:
    """Split `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.

    Raises:
        ValueError: bad brackets or a port outside 1-65535.
    """
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("bad [IPv6] brackets")
        return host, _port(rest[1:]) if rest else None
    if text.count(":") > 1:
        return text, None
    host, sep, port = text.partition(":")
    return host, _port(port) if sep else None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError("port must be a number from 1 to 65535")
    return int(text)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The operator's address rules (SPEC 3.3), validated at construction.

    Attributes:
        allow_private: also admit loopback, RFC 1918 and unique-local (fc00::/7)
            addresses; never link-local, cloud metadata, multicast or unspecified ones.
        allowed_networks: CIDRs (`10.1.0.0/16`) or exact `address:port` pairs
            (`127.0.0.1:8081`, `[::1]:8081`) admitted even when private networks are off.
            Nothing admits cloud metadata, multicast or unspecified addresses.
        resolve: curl-style `HOST:PORT:ADDRESS[,ADDRESS...]` pins for names; the pinned
            address still has to pass the check.
        connect_to: curl-style `HOST1:PORT1:HOST2:PORT2` routes: a request for the name
            HOST1 on PORT1 dials HOST2 (an address or a name; empty keeps HOST1) on PORT2
            (empty keeps PORT1). TLS still verifies HOST1, the `Host` header and the trace
            keep the URL as written, and the dialled address still has to pass the check.

    Raises:
        ValueError: an entry does not parse; the message names the entry.
    """

    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    resolve: tuple[str, ...] = ()
    connect_to: tuple[str, ...] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _endpoints: frozenset[tuple[IPAddress, int]] = field(init=False, repr=False, compare=False)
    _pins: dict[tuple[str, int], tuple[IPAddress, ...]] = field(
        init=False, repr=False, compare=False
    )
    _routes: dict[tuple[str, int], tuple[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks: list[IPNetwork] = []
        endpoints: set[tuple[IPAddress, int]] = set()
        for entry in self.allowed_networks:
            _parse_network_entry(entry, networks, endpoints)
        pins: dict[tuple[str, int], tuple[IPAddress, ...]] = {}
        for entry in self.resolve:
            key, addresses = _parse_pin(entry)
            if key in pins:
                raise ValueError(f"resolve entry {entry!r} pins {key[0]}:{key[1]} twice")
            pins[key] = addresses
        routes: dict[tuple[str, int], tuple[str, int]] = {}
        for entry in self.connect_to:
            key, target = _parse_route(entry)
            if key in routes:
                raise ValueError(f"connect-to entry {entry!r} routes {key[0]}:{key[1]} twice")
            routes[key] = target
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_endpoints", frozenset(endpoints))
        object.__setattr__(self, "_pins", pins)
        object.__setattr__(self, "_routes", routes)

    def pinned(self, host: str, port: int) -> tuple[IPAddress, ...] | None:
        """Return the addresses `host:port` is pinned to, or None."""
        try:
            key = (canonical_host(host), port)
        except ValueError:
            return None
        return self._pins.get(key)

    def routed(self, host: str, port: int) -> tuple[str, int] | None:
        """Return the `(host, port)` a `connect_to` route sends `host:port` to, or None.

        The host is canonical: an IP address's text or an IDNA name.
        """
        try:
            key = (canonical_host(host), port)
        except ValueError:
            return None
        return self._routes.get(key)

    def admits_explicitly(self, address: IPAddress, port: int) -> bool:
        """Whether `allowed_networks` lists this address (or address and port)."""
        return (address, port) in self._endpoints or any(address in net for net in self._networks)


def _parse_network_entry(
    entry: str, networks: list[IPNetwork], endpoints: set[tuple[IPAddress, int]]
) -> None:
    try:
        if "/" in entry:
            networks.append(ip_network(entry))
            return
        host, port = split_host_port(entry)
        address = ip_address(host)
    except ValueError as exc:
        raise ValueError(
            f"allowed network {entry!r} is not a CIDR, an IP address or address:port ({exc})"
        ) from None
    if port is None:
        networks.append(ip_network(address))
    else:
        endpoints.add((address, port))


def _parse_pin(entry: str) -> tuple[tuple[str, int], tuple[IPAddress, ...]]:
    try:
        host, port_text, addresses = entry.split(":", 2)
        if literal_address(host) is not None:
            raise ValueError("pins apply to names, not to IP addresses")
        port = _port(port_text)
        parsed = tuple(ip_address(a.strip().strip("[]")) for a in addresses.split(","))
        return (canonical_host(host), port), parsed
    except ValueError as exc:
        raise ValueError(f"resolve entry {entry!r} is not HOST:PORT:ADDRESS ({exc})") from None


def _parse_route(entry: str) -> tuple[tuple[str, int], tuple[str, int]]:
    try:
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise ValueError("too few ':'")
        host, port_text, target = parts
        if literal_address(host) is not None:
            raise ValueError("routes apply to names, not to IP addresses")
        port = _port(port_text)
        to_host, to_port = _split_target(target)
        if not to_host and to_port is None:
            raise ValueError("HOST2 and PORT2 are both empty")
        key = (canonical_host(host), port)
        return key, (canonical_host(to_host) if to_host else key[0], to_port or port)
    except ValueError as exc:
        raise ValueError(
            f"connect-to entry {entry!r} is not HOST1:PORT1:HOST2:PORT2 ({exc})"
        ) from None


def _split_target(text: str) -> tuple[str, int | None]:
    """Split `HOST2:PORT2`, where either may be empty and HOST2 may be `[v6]`."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError("bad [IPv6] brackets")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError("no PORT2")
    return host, _port(port_text) if port_text else None


def _unwrap(address: IPAddress) -> tuple[IPAddress, str | None]:
    """Return the IPv4 address an IPv6 transition form carries, and the form's name."""
    if isinstance(address, IPv4Address):
        return address, None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address.teredo is not None:
        return address.teredo[1], "Teredo"
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible"
    return address, None


def check_address(address: str, port: int, policy: AddressPolicy) -> str | None:
    """Decide whether the gateway may connect to `address:port`.

    Returns:
        None when allowed, else a reason safe to show (`address 169.254.169.254 is
        link-local`).
    """
    try:
        raw = ip_address(address.partition("%")[0])
    except ValueError:
        return f"address {address!r} is not an IP address"
    inner, form = _unwrap(raw)
    subject = f"address {raw}" if form is None else f"address {raw} ({form} of {inner})"
    never = _never_reason(inner, raw)
    if never is not None:
        return f"{subject} is {never}"
    if policy.admits_explicitly(raw, port) or policy.admits_explicitly(inner, port):
        return None
    private = _private_kind(inner)
    if private is not None:
        return None if policy.allow_private else f"{subject} is {private}"
    reason = _non_global_reason(inner)
    return None if reason is None else f"{subject} is {reason}"


@dataclass(frozen=True, slots=True)
class RefusalHints:
    """How a refusal names what would allow the call; the words differ per context.

    The service's callers can change their connector's `allowed_hosts`, not the operator's
    address settings, so the defaults name the former and add nothing to address refusals;
    `gateway script run` names its own flags instead. Templates are filled with `host`,
    `port` and `endpoint` (`host:port` or `address:port`, IPv6 in brackets).

    Attributes:
        host: the whole message for a host outside the allow-list.
        port: the whole message for an allowed host on a port the allow-list does not name.
        private: appended to the refusal of an address that private networks would admit.
        network: appended to the refusal of an address only an allowed network would admit.
    """

    host: str = "host {host} is not in the connector's allowed_hosts"
    port: str = "port {port} of host {host} is not in the connector's allowed_hosts"
    private: str = ""
    network: str = ""

    def address(self, address: str, port: int) -> str:
        """Return what to append to the refusal of `address:port`.

        Nothing when no setting could admit it (cloud metadata, multicast, unspecified,
        broadcast).
        """
        try:
            raw = ip_address(address.partition("%")[0])
        except ValueError:
            return ""
        inner, _ = _unwrap(raw)
        if _never_reason(inner, raw) is not None:
            return ""
        endpoint = f"[{raw}]:{port}" if raw.version == 6 else f"{raw}:{port}"
        template = self.private if _private_kind(inner) is not None else self.network
        return template.format(endpoint=endpoint)


def _never_reason(inner: IPAddress, raw: IPAddress) -> str | None:
    if inner in _METADATA or raw in _METADATA:
        return "a cloud metadata address"
    if inner.is_unspecified:
        return "unspecified"
    if inner.is_multicast:
        return "multicast"
    if inner == IPv4Address("255.255.255.255"):
        return "broadcast"
    return None


def _private_kind(inner: IPAddress) -> str | None:
    if inner.is_loopback:
        return "loopback"
    if isinstance(inner, IPv4Address) and any(inner in net for net in _RFC1918):
        return "private (RFC 1918)"
    if isinstance(inner, IPv6Address) and inner in _UNIQUE_LOCAL:
        return "unique-local (fc00::/7)"
    return None


def _non_global_reason(inner: IPAddress) -> str | None:
    if inner.is_link_local:
        return "link-local"
    for net, label in _NAMED_RANGES:
        if inner.version == net.version and inner in net:
            return label
    if inner.is_reserved or not inner.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One `allowed_hosts` entry: `api.example.com`, `*.example.com:8443`, `[::1]:8080`.

    `host` is canonical (IDNA, lower case; canonical text for an IP). A wildcard matches
    subdomains at any depth but not the bare suffix; no port means any port.
    """

    host: str
    wildcard: bool = False
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """Parse one pattern.

        Raises:
            ValueError: the pattern is malformed; the message names it.
        """
        try:
            host, port = split_host_port(text.strip())
            wildcard = host.startswith("*.")
            host = canonical_host(host[2:] if wildcard else host)
            if "*" in host or (wildcard and literal_address(host) is not None):
                raise ValueError("a wildcard must be a leading '*.' before a name")
        except ValueError as exc:
            raise ValueError(f"allowed host {text!r} is not valid ({exc})") from None
        return cls(host=host, wildcard=wildcard, port=port)

    def matches(self, host: str, port: int) -> bool:
        """Whether canonical `host` and `port` fall under this pattern."""
        if self.port is not None and self.port != port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def parse_host_patterns(texts: Sequence[str] | None) -> tuple[HostPattern, ...] | None:
    """Parse a connector's `allowed_hosts`; None (any host) stays None.

    Raises:
        ValueError: a pattern is malformed.
    """
    return None if texts is None else tuple(_host_pattern(t) for t in texts)


@functools.lru_cache(maxsize=4096)
def _host_pattern(text: str) -> HostPattern:
    # Parsed for every run of a connector, always the same few texts.
    return HostPattern.parse(text)


def host_allowed(host: str, port: int, patterns: Sequence[HostPattern] | None) -> bool:
    """Whether `host:port` is allowed; `patterns=None` allows every host, `()` none."""
    if patterns is None:
        return True
    try:
        canonical = canonical_host(host)
    except ValueError:
        return False
    return any(p.matches(canonical, port) for p in patterns)


# --- requests (THREATS E9): checked before anything is sent -----------------------------

METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
MAX_URL_LENGTH: Final = 16 * 1024
MAX_HEADERS: Final = 100
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_VALUE_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FULLY_ENCODED: Final = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


class InvalidRequestError(ValueError):
    """A method, URL or header the gateway will not send; the message is safe to show."""


def validate_method(method: str) -> str:
    """Return the upper-case method.

    Raises:
        InvalidRequestError: not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.
    """
    upper = method.upper()
    if upper not in METHODS:
        raise InvalidRequestError(f"HTTP method {method[:20]!r} is not allowed")
    return upper


def validate_url(url: str) -> URL:
    """Check a request or redirect URL and return it canonical, without fragment.

    Only absolute `http`/`https` URLs with a valid host are sent. URLs carrying
    credentials (`user:password@host`) are refused rather than turned into an
    `Authorization` header: the script should send the header itself, and a refusal
    cannot leak the password into a redirect or a trace. Literal IPv4 hosts are
    rewritten to dotted-quad (`http://2130706433/` becomes `http://127.0.0.1/`), as
    browsers do. Messages never repeat the URL, which may hold secrets.

    Raises:
        InvalidRequestError: the URL is refused.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequestError(f"URL is longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(url):
        raise InvalidRequestError("URL contains a control character (CR, LF, NUL, ...)")
    text = url.strip().replace(" ", "%20")  # as browsers do, also in the query (not `+`)
    try:
        # A URL the script already encoded is sent byte for byte (scripts sign exact query
        # strings); anything else is percent-encoded the way a browser would.
        parsed = URL(text, encoded=_FULLY_ENCODED.fullmatch(text) is not None)
        _ = parsed.explicit_port  # an encoded URL's port is only checked when read
    except (ValueError, UnicodeError):
        raise InvalidRequestError("URL is not valid") from None
    if parsed.scheme.lower() not in ("http", "https"):
        raise InvalidRequestError("only http and https URLs are allowed")
    if not parsed.raw_host:
        raise InvalidRequestError("URL has no host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise InvalidRequestError(
            "URLs with credentials (user:password@) are not allowed; "
            "send an Authorization header instead"
        )
    if parsed.explicit_port == 0:
        raise InvalidRequestError("port 0 is not allowed")
    try:
        host = canonical_host(parsed.raw_host)
    except ValueError as exc:
        raise InvalidRequestError(f"URL host is not valid: {exc}") from None
    return parsed.with_host(host).with_fragment(None)


def check_url_literal(url: str, policy: AddressPolicy) -> str | None:
    """Check a URL whose host is an IP literal in any form against `policy`.

    Names return None: their addresses are checked when dialled.

    Raises:
        InvalidRequestError: the URL is refused by `validate_url`.
    """
    parsed = validate_url(url)
    address = literal_address(parsed.raw_host or "")
    if address is None:
        return None
    return check_address(str(address), parsed.port or 0, policy)


def validate_headers(headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Check header names (RFC 9110 tokens) and values (no CR, LF, NUL or controls).

    Raises:
        InvalidRequestError: a bad name or value; the message never repeats the value.
    """
    if len(headers) > MAX_HEADERS:
        raise InvalidRequestError(f"more than {MAX_HEADERS} request headers")
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            shown = _CONTROL.sub("?", name[:40])
            raise InvalidRequestError(f"header name {shown!r} is not a valid HTTP token")
        if _VALUE_CONTROL.search(value):
            raise InvalidRequestError(
                f"header {name!r} has a control character (CR, LF, NUL, ...) in its value"
            )
    return tuple(headers)
