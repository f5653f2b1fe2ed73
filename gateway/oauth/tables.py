"""Pending OAuth 2.0 authorisations and one-time authorize links, each used once.

The conventions of `gateway.store.tables` apply. The `state` sent to the provider is a bearer
credential for the callback, so only its SHA-256 is stored (`state_hash`); the PKCE code
verifier is sealed by the key ring, bound to the customer and the state. A row is deleted by
the callback that uses it (compare-and-swap), and rows past `expires_at` are swept.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.store.tables import (
    ID_LENGTH,
    UTCDateTime,
    created_at_column,
    customer_id_column,
    id_column,
    metadata,
)

oauth_states: Final = Table(
    "oauth_states",
    metadata,
    id_column(),
    customer_id_column(),
    # SHA-256 of the `state` parameter, hex: the state itself is never stored.
    Column("state_hash", String(64), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("connector_id", String(ID_LENGTH), nullable=False),
    # The new account's name; for a re-authorisation, None keeps the account's name.
    Column("account_name", String(200), nullable=True),
    # The account to re-authorise, or None to create one.
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("redirect_uri", Text, nullable=False),
    Column("verifier_key_id", String(32), nullable=False),
    Column("verifier_ciphertext", LargeBinary, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    created_at_column(),
    UniqueConstraint("state_hash"),
    UniqueConstraint("customer_id", "id"),
    # The user, connector and account belong to the row's customer; deleting any of them
    # ends the pending authorisation.
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["customer_id", "connector_id"],
        ["connectors.customer_id", "connectors.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["customer_id", "account_id"],
        ["accounts.customer_id", "accounts.id"],
        ondelete="CASCADE",
    ),
    Index(None, "expires_at"),
)

# One-time links to `authorize` for a browser, which sends no bearer header (SPEC 4.3). The
# link's secret is a bearer credential for one authorisation: only its SHA-256 is stored. A
# link is deleted by its first use (compare-and-swap); expired ones are swept.
oauth_links: Final = Table(
    "oauth_links",
    metadata,
    id_column(),
    customer_id_column(),
    Column("secret_hash", String(64), nullable=False),
    # The user the link acts for, and what it authorises (as the GET's query would say).
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("connector_key", String(200), nullable=False),
    Column("account_name", String(200), nullable=True),
    Column("account_id", String(ID_LENGTH), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=False),
    created_at_column(),
    UniqueConstraint("secret_hash"),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["customer_id", "account_id"],
        ["accounts.customer_id", "accounts.id"],
        ondelete="CASCADE",
    ),
    Index(None, "expires_at"),
)
