"""The whole schema: importing this module registers every table module on `metadata`.

Alembic's environment and the schema-comparison test use it, so a table module that is
not listed here is noticed at once (its migration would be missing from the comparison).
"""

from __future__ import annotations

import actions.tables
import gateway.accounts.tables
import gateway.apps.tables
import gateway.connectors.tables
import gateway.datasets.tables
import gateway.oauth.tables
import writeback.jobs.tables
import writeback.tables
from gateway.store.tables import metadata

TABLE_MODULES = (
    actions.tables,
    gateway.accounts.tables,
    gateway.apps.tables,
    gateway.connectors.tables,
    gateway.datasets.tables,
    gateway.oauth.tables,
    writeback.jobs.tables,
    writeback.tables,
)

__all__ = ["TABLE_MODULES", "metadata"]
