"""Errors of the app service, free of HTTP; `gateway.middlewares` renders them."""

from __future__ import annotations

from gateway.errors import GatewayError


class BundleRefused(GatewayError):
    """An app zip that is not a plain tree of regular files (a link, `..`, a duplicate, ...)."""

    code = "app_bundle_refused"


class BundleTooLarge(GatewayError):
    """An app zip past a cap: files, bytes inflated, bytes per file, compression ratio."""

    code = "payload_too_large"


class AliasNotMapped(GatewayError):
    """The calling user has mapped no account to this alias in this instance."""

    code = "alias_not_mapped"
