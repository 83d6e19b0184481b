"""Alembic environment for the directory's database (see ``shared.database.upgrade``)."""

from services.directory.storage import metadata
from shared.database import run_migrations_online

run_migrations_online(metadata)
