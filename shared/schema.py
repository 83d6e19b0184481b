"""Whether a database's schema is behind the code's migrations (``handoff db check``, ``/ready``).

Migrations must work with the release before them (add first, remove in a later release), so a
database *ahead* of a process's code is fine: the old replicas keep serving while new ones
start. Only a database *behind* the code makes a process unready."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import database


@dataclass(frozen=True)
class Schema:
    """Where a database's schema is (``current``: its Alembic revision, None when it has none)
    against the code's ``head``."""

    current: str | None
    head: str
    behind: bool

    def describe(self) -> str:
        if not self.behind:
            return f"at {self.current}, current"
        return f"at {self.current or 'no revision'}, the code needs {self.head}: run `handoff db upgrade`"


@functools.cache
def _revisions(migrations: Path) -> tuple[str, frozenset[str]]:
    """The head and every known revision of a migrations directory (read once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    if head is None:
        raise RuntimeError(f"{migrations} has no migrations")
    return head, frozenset(revision.revision for revision in script.walk_revisions())


async def check(engine: AsyncEngine, migrations: Path) -> Schema:
    """The database's schema against the code's migrations. A revision the code does not know
    comes from a newer release: ahead, not behind."""
    head, known = _revisions(migrations)
    try:
        async with engine.connect() as connection:
            current = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except DBAPIError as exc:
        if database.unavailable(exc):
            raise
        current = None  # no alembic_version table: nothing was ever migrated
    return Schema(current=current, head=head, behind=current is None or (current in known and current != head))
