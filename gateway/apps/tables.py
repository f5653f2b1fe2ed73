"""The app tables: designs with their manifest and files, aliases, instances, mappings.

The conventions of `gateway.store.tables` apply. An app's static files live in the
database (decision 0015): an upload is one transaction, so a refused or failed upload leaves
nothing behind, and every replica serves the same bytes. The manifest is kept whole as a
JSON document (unknown keys too); the account aliases it declares are rows of their own, so
a mapping can only name an alias its app declares.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
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

ALIAS_LENGTH: Final = 100
PATH_LENGTH: Final = 512

apps: Final = Table(
    "apps",
    metadata,
    id_column(),
    customer_id_column(),
    Column("owner_id", String(ID_LENGTH), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    # The manifest as uploaded (normalised names, unknown keys kept: SPEC 4.4 reads them).
    Column("manifest", JSON, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    created_at_column(),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(["customer_id", "owner_id"], ["users.customer_id", "users.id"]),
)

app_files: Final = Table(
    "app_files",
    metadata,
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("app_id", String(ID_LENGTH), nullable=False),
    # A checked relative POSIX path (gateway.apps.bundle), without `manifest.json`.
    Column("path", String(PATH_LENGTH), nullable=False),
    Column("size", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    PrimaryKeyConstraint("app_id", "path"),
    ForeignKeyConstraint(
        ["customer_id", "app_id"], ["apps.customer_id", "apps.id"], ondelete="CASCADE"
    ),
)

app_aliases: Final = Table(
    "app_aliases",
    metadata,
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("app_id", String(ID_LENGTH), nullable=False),
    Column("alias", String(ALIAS_LENGTH), nullable=False),
    # The data-provider (connector) key the alias's account must have.
    Column("provider_key", String(100), nullable=False),
    PrimaryKeyConstraint("app_id", "alias"),
    ForeignKeyConstraint(
        ["customer_id", "app_id"], ["apps.customer_id", "apps.id"], ondelete="CASCADE"
    ),
)

app_instances: Final = Table(
    "app_instances",
    metadata,
    id_column(),
    customer_id_column(),
    Column("app_id", String(ID_LENGTH), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_by", String(ID_LENGTH), nullable=False),
    created_at_column(),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(
        ["customer_id", "app_id"], ["apps.customer_id", "apps.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(["customer_id", "created_by"], ["users.customer_id", "users.id"]),
)

# Per user: in this instance, this alias means this account of mine (or shared with me).
app_account_mappings: Final = Table(
    "app_account_mappings",
    metadata,
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("instance_id", String(ID_LENGTH), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("app_id", String(ID_LENGTH), nullable=False),
    Column("alias", String(ALIAS_LENGTH), nullable=False),
    Column("account_id", String(ID_LENGTH), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("instance_id", "user_id", "alias"),
    ForeignKeyConstraint(
        ["customer_id", "instance_id"],
        ["app_instances.customer_id", "app_instances.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["app_id", "alias"], ["app_aliases.app_id", "app_aliases.alias"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    # Deleting an account removes the mappings to it: the alias is then simply unmapped.
    ForeignKeyConstraint(
        ["customer_id", "account_id"],
        ["accounts.customer_id", "accounts.id"],
        ondelete="CASCADE",
    ),
)

# A browser's session on an instance's own origin (decision 0018), bound to (user,
# instance). Its id is a bearer credential: only its SHA-256 is stored, and it is looked up
# by that digest with the instance the request's `Host` names, so a session works on its own
# origin only. It dies with its user, its instance (and so its app), and the API token that
# opened it (the lookup joins the token and refuses a revoked one); revoking deletes it.
app_sessions: Final = Table(
    "app_sessions",
    metadata,
    id_column(),
    customer_id_column(),
    Column("instance_id", String(ID_LENGTH), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("token_id", String(ID_LENGTH), nullable=False),
    Column("session_hash", String(64), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    created_at_column(),
    UniqueConstraint("session_hash"),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(
        ["customer_id", "instance_id"],
        ["app_instances.customer_id", "app_instances.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["customer_id", "token_id"],
        ["api_tokens.customer_id", "api_tokens.id"],
        ondelete="CASCADE",
    ),
    Index(None, "instance_id", "user_id"),
    Index(None, "expires_at"),
)

# One-time secrets that lead to a session: a launch link a browser opens on the gateway's
# origin (`launch`, 60 s), and the code the instance origin exchanges for a session
# (`exchange`). Only digests are stored; the first use deletes the row (compare-and-swap).
app_codes: Final = Table(
    "app_codes",
    metadata,
    id_column(),
    customer_id_column(),
    Column("code_hash", String(64), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("instance_id", String(ID_LENGTH), nullable=False),
    Column("user_id", String(ID_LENGTH), nullable=False),
    Column("token_id", String(ID_LENGTH), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    created_at_column(),
    UniqueConstraint("code_hash"),
    UniqueConstraint("customer_id", "id"),
    CheckConstraint("purpose IN ('launch', 'exchange')", name="purpose"),
    ForeignKeyConstraint(
        ["customer_id", "instance_id"],
        ["app_instances.customer_id", "app_instances.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["customer_id", "token_id"],
        ["api_tokens.customer_id", "api_tokens.id"],
        ondelete="CASCADE",
    ),
    Index(None, "expires_at"),
)
