"""A connector's OAuth 2.0 client as the token endpoint needs it, client secret opened."""

from __future__ import annotations

from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.accounts.vault import SecretVault
from gateway.connectors.models import OAuth2Auth
from gateway.connectors.records import Connector
from gateway.connectors.tables import connectors
from gateway.errors import NotFound, ProviderMismatch
from gateway.oauth.tokens import OAuthClientConfig
from gateway.store.cache import Cache
from gateway.store.generations import Area, Generations

# Opened client secrets by customer and connector (decision 0019); a connector write drops
# them at once here and at the next poll elsewhere.
SECRETS_MAX: Final = 1_000
SECRETS_MAX_AGE_S: Final = 60.0


class ClientConfigs:
    """Builds `OAuthClientConfig`s from stored connectors (the secret is opened only here).

    Args:
        engine: the metadata store.
        vault: opens the sealed client secrets.
        generations: the process's cache generations (none: nothing cached).
    """

    def __init__(
        self, engine: AsyncEngine, vault: SecretVault, generations: Generations | None = None
    ) -> None:
        self._engine = engine
        self._vault = vault
        self._secrets: Cache[tuple[str, str], str | None] = (
            generations or Generations(engine)
        ).cache(
            Area.CONNECTORS, "client_secrets", max_size=SECRETS_MAX, max_age_s=SECRETS_MAX_AGE_S
        )

    async def client_secret(self, connector: Connector) -> str | None:
        """The connector's OAuth client secret, or None for a public client.

        Raises:
            NotFound: the connector no longer exists.
            gateway.crypto.DecryptionError: the sealed secret does not belong to it.
        """
        key = (connector.customer_id, connector.id)
        return await self._secrets.get_or_load(key, lambda: self._open(connector))

    async def _open(self, connector: Connector) -> str | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        connectors.c.client_secret_key_id, connectors.c.client_secret_ciphertext
                    ).where(
                        connectors.c.id == connector.id,
                        connectors.c.customer_id == connector.customer_id,
                    )
                )
            ).first()
        if row is None:
            raise NotFound("no such connector")
        if row.client_secret_ciphertext is None or row.client_secret_key_id is None:
            return None
        return self._vault.open_client_secret(
            connector.customer_id,
            connector.id,
            row.client_secret_key_id,
            row.client_secret_ciphertext,
        )

    async def config(self, connector: Connector, *, with_secret: bool = True) -> OAuthClientConfig:
        """The connector's client at its provider (without its secret: for authorization URLs).

        Raises:
            ProviderMismatch: the connector does not use OAuth 2.0.
            NotFound: the connector no longer exists.
        """
        auth = connector.auth
        if not isinstance(auth, OAuth2Auth):
            raise ProviderMismatch(f"connector {connector.key!r} does not use OAuth 2.0")
        return OAuthClientConfig(
            token_url=str(auth.token_url),
            client_id=auth.client_id,
            client_secret=await self.client_secret(connector) if with_secret else None,
            scopes=tuple(auth.scopes),
            extra_params=dict(auth.extra_params),
            authorization_url=str(auth.authorization_url),
        )
