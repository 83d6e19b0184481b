"""Which database and Redis errors answer 503 with Retry-After (busy or away for now, the same
request can succeed later) and which stay a 500 (a fault in the request or the code)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis.exceptions
import sqlalchemy.exc
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient

from shared import database, web


def sqlite_failure(path: Path, sql: str, *, locked: bool = False) -> sqlalchemy.exc.DBAPIError:
    """What SQLAlchemy raises when SQLite refuses ``sql``, from a real SQLite file."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    if locked:
        holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute(sql)
    except sqlite3.OperationalError as exc:
        return sqlalchemy.exc.OperationalError(sql, {}, exc)
    finally:
        other.close()
        holder.close()
    raise AssertionError(f"{sql} did not fail")


class PostgresError(Exception):
    """Stands in for the asyncpg error SQLAlchemy wraps: only its SQLSTATE matters here."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def postgres_failure(sqlstate: str) -> sqlalchemy.exc.DBAPIError:
    return sqlalchemy.exc.DBAPIError("INSERT ...", {}, PostgresError(sqlstate))


def test_busy_or_unreachable_databases_are_unavailable(tmp_path: Path) -> None:
    assert database.unavailable(sqlite_failure(tmp_path / "db", "BEGIN IMMEDIATE", locked=True))
    for sqlstate in ("55P03", "57014", "57P03", "08006", "53300", "40001", "40P01"):
        assert database.unavailable(postgres_failure(sqlstate)), sqlstate
    assert database.unavailable(sqlalchemy.exc.TimeoutError("QueuePool limit reached"))
    assert database.unavailable(ConnectionRefusedError(111, "Connection refused"))


def test_faults_in_the_request_or_the_code_are_not(tmp_path: Path) -> None:
    assert not database.unavailable(sqlite_failure(tmp_path / "db", "SELECT nope FROM t"))
    for sqlstate in ("23505", "42P01", "22001"):  # unique violation, no such table, value too long
        assert not database.unavailable(postgres_failure(sqlstate)), sqlstate
    assert not database.unavailable(ValueError("nope"))


@pytest.fixture
def client(tmp_path: Path):
    failures = {
        "locked": sqlite_failure(tmp_path / "db", "BEGIN IMMEDIATE", locked=True),
        "bug": sqlite_failure(tmp_path / "db", "SELECT nope FROM t"),
        "redis": redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    }

    @get("/fail/{what:str}", sync_to_thread=False)
    def fail(what: FromPath[str]) -> None:
        raise failures[what]

    with TestClient(Litestar([fail], exception_handlers=web.exception_handlers)) as client:
        yield client


@pytest.mark.parametrize("what, part", [("locked", "database"), ("redis", "redis")])
def test_unavailable_parts_answer_503_with_retry_after(client: TestClient, what: str, part: str) -> None:
    answer = client.get(f"/fail/{what}")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == str(web.RETRY_AFTER_SECONDS)
    assert answer.json() == {
        "status_code": 503,
        "detail": f"the {part} is busy or unavailable; try again in a few seconds",
        "extra": {"unavailable": part},
    }


def test_other_database_errors_stay_500_without_internals(client: TestClient) -> None:
    answer = client.get("/fail/bug")
    assert answer.status_code == 500 and "retry-after" not in answer.headers
    assert "nope" not in answer.text and "SELECT" not in answer.text
