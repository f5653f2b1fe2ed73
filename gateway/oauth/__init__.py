"""OAuth 2.0 accounts: the token endpoint client and the refresh coordinator (SPEC 6)."""

from __future__ import annotations

from gateway.oauth.refresh import RefreshCoordinator, RefreshOutcome, RefreshUnavailable
from gateway.oauth.tokens import (
    ClientAuthMethod,
    InvalidGrant,
    OAuthClientConfig,
    ProviderError,
    ProviderUnavailable,
    TokenEndpoint,
    TokenEndpointError,
    TokenSet,
    authorization_request_url,
    new_code_verifier,
    new_state,
    parse_retry_after,
)

__all__ = [
    "ClientAuthMethod",
    "InvalidGrant",
    "OAuthClientConfig",
    "ProviderError",
    "ProviderUnavailable",
    "RefreshCoordinator",
    "RefreshOutcome",
    "RefreshUnavailable",
    "TokenEndpoint",
    "TokenEndpointError",
    "TokenSet",
    "authorization_request_url",
    "new_code_verifier",
    "new_state",
    "parse_retry_after",
]
