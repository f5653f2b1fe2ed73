"""Egress: the policy and the client every upstream request of a run goes through."""

from gateway.egress.client import EgressClient
from gateway.egress.connect import EgressRefusedError, PinningResolver, make_socket_factory
from gateway.egress.policy import (
    AddressPolicy,
    HostPattern,
    InvalidRequestError,
    RefusalHints,
    check_address,
    check_url_literal,
    host_allowed,
    literal_address,
    parse_host_patterns,
    parse_ipv4_literal,
    validate_headers,
    validate_method,
    validate_url,
)
from gateway.egress.session import (
    EGRESS_REFUSED,
    UPSTREAM_FAILURES,
    EgressSession,
    redact_url,
    scrub,
)

__all__ = [
    "EGRESS_REFUSED",
    "UPSTREAM_FAILURES",
    "AddressPolicy",
    "EgressClient",
    "EgressRefusedError",
    "EgressSession",
    "HostPattern",
    "InvalidRequestError",
    "PinningResolver",
    "RefusalHints",
    "check_address",
    "check_url_literal",
    "host_allowed",
    "literal_address",
    "make_socket_factory",
    "parse_host_patterns",
    "parse_ipv4_literal",
    "redact_url",
    "scrub",
    "validate_headers",
    "validate_method",
    "validate_url",
]
