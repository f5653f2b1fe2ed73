"""The account tables: non-secret fields in the row, each secret field sealed in its own row."""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
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

ACCOUNT_STATUSES: Final = ("valid", "needs_reauth", "invalid")
AUTH_METHODS: Final = ("none", "basic", "apikey", "oauth2")

accounts: Final = Table(
    "accounts",
    metadata,
    id_column(),
    customer_id_column(),
    Column("owner_id", String(ID_LENGTH), nullable=False),
    Column("connector_key", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("auth_method", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    # Fields that are not secret (username, custom non-secret fields), shown to the owner.
    Column("fields", JSON, nullable=False),
    # Names of the secret fields that are set: responses say which, never what.
    Column("secret_fields", JSON, nullable=False),
    Column("token_expires_at", UTCDateTime(), nullable=True),
    # Compare-and-swap version and the OAuth refresh lease (tables.py conventions).
    Column("version", Integer, nullable=False, default=1),
    Column("refresh_lease_owner", String(ID_LENGTH), nullable=True),
    Column("refresh_lease_expires_at", UTCDateTime(), nullable=True),
    # After a 429/5xx from the provider: no refresh before this time (Retry-After).
    Column("refresh_backoff_until", UTCDateTime(), nullable=True),
    created_at_column(),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(["customer_id", "owner_id"], ["users.customer_id", "users.id"]),
    CheckConstraint("status IN ('valid', 'needs_reauth', 'invalid')", name="status"),
    CheckConstraint("auth_method IN ('none', 'basic', 'apikey', 'oauth2')", name="auth_method"),
)

account_secrets: Final = Table(
    "account_secrets",
    metadata,
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=False),
    Column("field", String(100), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    PrimaryKeyConstraint("account_id", "field"),
    ForeignKeyConstraint(
        ["customer_id", "account_id"],
        ["accounts.customer_id", "accounts.id"],
        ondelete="CASCADE",
    ),
)

account_shares: Final = Table(
    "account_shares",
    metadata,
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    created_at_column(),
    PrimaryKeyConstraint("account_id", "user_id"),
    # Both ends in the same customer: sharing across customers cannot be stored.
    ForeignKeyConstraint(
        ["customer_id", "account_id"],
        ["accounts.customer_id", "accounts.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
)
