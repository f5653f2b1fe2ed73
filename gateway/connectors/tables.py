"""The connector tables: definitions, their scripts and icons, and the runs made with them.

The conventions of `gateway.store.tables` apply. Definitions keep their structured parts
(auth, parameters, limits, ...) as JSON documents validated by `gateway.connectors.models`;
what is filtered or joined on (customer, owner, key, guid, scope, status) is a real column.
A connector's OAuth client secret is never stored in plain text: only sealed, in
`client_secret_ciphertext` under `client_secret_key_id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from gateway.store.tables import (
    ID_LENGTH,
    UTCDateTime,
    created_at_column,
    customer_id_column,
    id_column,
    metadata,
)

CONNECTOR_KINDS: Final = ("action", "writeback", "connector")
SCOPES: Final = ("personal", "customer", "global")
CONNECTOR_STATUSES: Final = ("draft", "submitted", "approved", "rejected", "withdrawn")
SCRIPT_KINDS: Final = ("auth", "process", "discovery")
ICON_SLOTS: Final = ("icon", "icon_plain", "logo", "banner")
RUN_KINDS: Final = ("dev", "action", "auth", "job", "check")
RUN_MODES: Final = ("process", "auth", "discovery")
RUN_STATUSES: Final = ("success", "failed", "error", "timeout")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def _updated_at_column() -> Column[datetime]:
    return Column("updated_at", UTCDateTime(), nullable=False)


connectors: Final = Table(
    "connectors",
    metadata,
    id_column(),
    # The public identifier (SPEC 2); `id` stays internal to the store.
    Column("guid", String(ID_LENGTH), nullable=False),
    customer_id_column(),
    Column("owner_id", String(ID_LENGTH), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key", String(100), nullable=False),
    Column("description", Text, nullable=False),
    # The auth method and its settings, never the client secret (sealed below).
    Column("auth", JSON, nullable=False),
    Column("client_secret_ciphertext", LargeBinary, nullable=True),
    Column("client_secret_key_id", String(64), nullable=True),
    Column("allowed_hosts", JSON, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("reports", JSON, nullable=False),
    Column("account_fields", JSON, nullable=False),
    Column("limits", JSON, nullable=False),
    Column("scope", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    created_at_column(),
    _updated_at_column(),
    UniqueConstraint("guid"),
    UniqueConstraint("customer_id", "id"),
    UniqueConstraint("customer_id", "key"),
    ForeignKeyConstraint(["customer_id", "owner_id"], ["users.customer_id", "users.id"]),
    CheckConstraint(_in("kind", CONNECTOR_KINDS), name="kind"),
    CheckConstraint(_in("scope", SCOPES), name="scope"),
    CheckConstraint(_in("status", CONNECTOR_STATUSES), name="status"),
    # A global connector's key is unique among global connectors too (SPEC 4.3): the index,
    # not a read before the write, is what holds when two promotions race.
    Index(
        "uq_connectors_global_key",
        "key",
        unique=True,
        sqlite_where=text("scope = 'global'"),
        postgresql_where=text("scope = 'global'"),
    ),
)

connector_scripts: Final = Table(
    "connector_scripts",
    metadata,
    id_column(),
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("connector_id", String(ID_LENGTH), nullable=False),
    Column("kind", String(20), nullable=False),
    # The discovery parameter a discovery script serves; '' for the auth and process scripts.
    Column("param", String(100), nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    _updated_at_column(),
    UniqueConstraint("connector_id", "kind", "param"),
    ForeignKeyConstraint(
        ["customer_id", "connector_id"],
        ["connectors.customer_id", "connectors.id"],
        ondelete="CASCADE",
    ),
    CheckConstraint(_in("kind", SCRIPT_KINDS), name="kind"),
)

connector_icons: Final = Table(
    "connector_icons",
    metadata,
    id_column(),
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("connector_id", String(ID_LENGTH), nullable=False),
    Column("slot", String(20), nullable=False),
    Column("png", LargeBinary, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    _updated_at_column(),
    UniqueConstraint("connector_id", "slot"),
    ForeignKeyConstraint(
        ["customer_id", "connector_id"],
        ["connectors.customer_id", "connectors.id"],
        ondelete="CASCADE",
    ),
    CheckConstraint(_in("slot", ICON_SLOTS), name="slot"),
)

runs: Final = Table(
    "runs",
    metadata,
    id_column(),
    customer_id_column(),
    Column("user_id", String(ID_LENGTH), nullable=False),
    # Recorded, not referenced: a run outlives the connector it ran (kept for the retention
    # period whatever happens to the definition).
    Column("connector_id", String(ID_LENGTH), nullable=False),
    Column("connector_guid", String(ID_LENGTH), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    # The run result as the runtime returned it (secrets already redacted), without run_id.
    Column("result", JSON, nullable=False),
    # How the account was chosen (SPEC 5): {"source": "credentials" | "account" | "none", ...}.
    Column("account_resolution", JSON, nullable=False),
    # The published version the run used; NULL for a run of the draft (SPEC 4.3).
    Column("version", Integer, nullable=True),
    # The scope an action ran in, and its timings ({"resolution_ms", "run_ms"}); NULL for
    # other runs.
    Column("scope", String(20), nullable=True),
    Column("timings", JSON, nullable=True),
    created_at_column(),
    Column("duration_ms", Float, nullable=False),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(
        ["customer_id", "user_id"], ["users.customer_id", "users.id"], ondelete="CASCADE"
    ),
    CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
    CheckConstraint(_in("mode", RUN_MODES), name="mode"),
    CheckConstraint(_in("status", RUN_STATUSES), name="status"),
    CheckConstraint("scope IS NULL OR " + _in("scope", SCOPES), name="scope"),
    Index(None, "customer_id", "connector_guid"),
    Index(None, "customer_id", "user_id"),
    Index(None, "created_at"),
)

connector_versions: Final = Table(
    "connector_versions",
    metadata,
    id_column(),
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("connector_id", String(ID_LENGTH), nullable=False),
    # 1, 2, ... per connector; the unique key makes a concurrent publish lose, not duplicate.
    Column("number", Integer, nullable=False),
    Column("created_by", String(ID_LENGTH), nullable=False),
    # The definition as the API shows it (never the client secret, which stays sealed on the
    # connector), and the icons by digest: {slot: sha256}.
    Column("definition", JSON, nullable=False),
    Column("icons", JSON, nullable=False),
    created_at_column(),
    UniqueConstraint("connector_id", "number"),
    UniqueConstraint("customer_id", "id"),
    ForeignKeyConstraint(
        ["customer_id", "connector_id"],
        ["connectors.customer_id", "connectors.id"],
        ondelete="CASCADE",
    ),
)

connector_version_scripts: Final = Table(
    "connector_version_scripts",
    metadata,
    id_column(),
    Column("customer_id", String(ID_LENGTH), nullable=False),
    Column("version_id", String(ID_LENGTH), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("param", String(100), nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    UniqueConstraint("version_id", "kind", "param"),
    ForeignKeyConstraint(
        ["customer_id", "version_id"],
        ["connector_versions.customer_id", "connector_versions.id"],
        ondelete="CASCADE",
    ),
    CheckConstraint(_in("kind", SCRIPT_KINDS), name="kind"),
)

scope_changes: Final = Table(
    "scope_changes",
    metadata,
    id_column(),
    # Append-only: rows are inserted, never updated. The connector and the user who changed
    # the scope are recorded, not referenced, so the audit outlives both; a platform admin
    # of another customer may be the one who changed it.
    customer_id_column(),
    Column("connector_id", String(ID_LENGTH), nullable=False),
    Column("changed_by", String(ID_LENGTH), nullable=False),
    Column("from_scope", String(20), nullable=False),
    Column("to_scope", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    created_at_column(),
    UniqueConstraint("customer_id", "id"),
    Index(None, "connector_id"),
    CheckConstraint(_in("from_scope", SCOPES), name="from_scope"),
    CheckConstraint(_in("to_scope", SCOPES), name="to_scope"),
)
