"""The account API tests share the connector tests' callers and fake upstream."""

from tests.gateway.connectors.conftest import (  # noqa: F401 - fixtures, registered by import
    settings,
    upstream,
)
