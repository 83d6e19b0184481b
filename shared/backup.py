"""``handoff backup`` / ``handoff restore``: one file per service's database, in a directory.

SQLite is copied with its online backup API (consistent while the services keep writing);
PostgreSQL with ``pg_dump``'s custom format (one consistent snapshot) and ``pg_restore`` in one
transaction. A restore goes into an empty database only (created by the operator, or a SQLite file
that does not exist yet) and never over data: it refuses a database that has tables, naming it.
Passwords reach ``pg_dump``/``pg_restore`` through ``PGPASSWORD``, never their command line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import URL, make_url


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says what to fix."""


def file_name(url: str, service: str) -> str:
    """The backup file of ``service`` whose database is at ``url``, inside the backup directory."""
    return f"{service}.sqlite3" if _is_sqlite(make_url(url)) else f"{service}.dump"


def backup(*, url: str, to: Path) -> None:
    """Copy the database at ``url`` into the file ``to`` (replaced if it exists)."""
    parsed = make_url(url)
    partial = to.with_name(to.name + ".partial")
    if _is_sqlite(parsed):
        source = _sqlite_path(parsed)
        if not source.exists():
            raise BackupError(f"{source} does not exist: nothing to back up")
        _sqlite_copy(sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(partial))
    else:
        _run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}", url=parsed)
    partial.replace(to)  # a half-written backup never takes the place of a good one


def restore(*, url: str, source: Path) -> None:
    """Load the backup file ``source`` into the empty database at ``url``."""
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file")
    parsed = make_url(url)
    if _is_sqlite(parsed):
        target = _sqlite_path(parsed)
        if target.exists() and target.stat().st_size:
            with closing(sqlite3.connect(target)) as existing:
                tables = existing.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables:
                raise BackupError(f"{target} already has {tables} table(s): restore into a new, empty database")
        target.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(sqlite3.connect(source), sqlite3.connect(target))
        return
    tables = _run(
        "psql", "-X", "-A", "-t", "-c", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", url=parsed
    ).strip()
    if tables != "0":
        raise BackupError(f"database {parsed.database} already has {tables} table(s): restore into an empty one")
    _run(
        "pg_restore",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        str(source),
        url=parsed,
    )


def _sqlite_copy(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    with closing(source), closing(target):
        source.backup(target)


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _run(tool: str, *args: str, url: URL) -> str:
    """Run a PostgreSQL client tool against ``url``; its output, or BackupError with its message."""
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed (Debian/Ubuntu: postgresql-client, as new as the server)")
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run([tool, *args, f"--dbname={dsn}"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout
