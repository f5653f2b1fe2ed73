"""Store tests: the database fixtures live in `tests/dbfixtures.py` (shared by every package).

Every test that takes `db_url`, `migrated_db_url` or `engine` runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file, for tests of SQLite-only behaviour."""
    return f"sqlite:///{tmp_path / 'gateway.db'}"
