"""A one-connection SQLite engine (the referrals service's) runs its statements on the event loop's
thread, its COMMIT in the connection's own thread, and waits for a lock another process holds
without stopping the loop: on a real SQLite file, locked by a real second connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from shared import database


def _engine(path: Path):
    engine = database.create_engine(f"sqlite+aiosqlite:///{path}", sqlite_connections=1)
    seen: list[tuple[str, int]] = []

    @event.listens_for(engine.sync_engine, "connect")
    def _trace(dbapi_connection, _record) -> None:
        # SQLite calls this in whichever thread runs the statement.
        dbapi_connection.driver_connection._conn.set_trace_callback(
            lambda sql: seen.append((sql.split()[0].upper(), threading.get_ident()))
        )

    return engine, seen


def test_statements_run_on_the_loop_and_the_commit_beside_it(tmp_path: Path) -> None:
    async def run() -> tuple[list[tuple[str, int]], int]:
        engine, seen = _engine(tmp_path / "t.db")
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE t (n INTEGER)"))
                await connection.execute(text("INSERT INTO t VALUES (1)"))
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT n FROM t"))).scalar_one() == 1
        finally:
            await engine.dispose()
        return seen, threading.get_ident()

    seen, loop_thread = asyncio.run(run())
    threads = {word: {t for w, t in seen if w == word} for word in ("INSERT", "SELECT", "COMMIT")}
    assert threads["INSERT"] == {loop_thread}
    assert threads["SELECT"] == {loop_thread}
    assert threads["COMMIT"] and loop_thread not in threads["COMMIT"]


def _hold_lock(path: Path, seconds: float, ready: threading.Event) -> None:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        ready.set()
        time.sleep(seconds)
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def test_a_lock_held_elsewhere_is_waited_for_while_the_loop_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    sqlite3.connect(path).executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER);")
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, 0.6, ready))
    holder.start()
    ready.wait(5)

    async def run() -> tuple[int, float, int]:
        engine, _ = _engine(path)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        try:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (2)"))
            waited = time.monotonic() - started
            async with engine.connect() as connection:
                stored = (await connection.execute(text("SELECT n FROM t"))).scalar_one()
        finally:
            ticker.cancel()
            await engine.dispose()
        return ticks, waited, stored

    ticks, waited, stored = asyncio.run(run())
    holder.join()
    assert stored == 2
    assert waited >= 0.4  # it did wait for the lock...
    assert ticks >= 10  # ...and the loop went on meanwhile (about 60 ticks in 0.6 s)


def test_a_lock_held_past_the_wait_fails_as_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "LOCK_WAIT_MS", 200)
    path = tmp_path / "t.db"
    sqlite3.connect(path).executescript("PRAGMA journal_mode=WAL; CREATE TABLE t (n INTEGER);")
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(path, 1.5, ready))
    holder.start()
    ready.wait(5)

    async def run() -> OperationalError:
        engine, _ = _engine(path)
        try:
            with pytest.raises(OperationalError) as failed:
                async with engine.begin() as connection:
                    await connection.execute(text("INSERT INTO t VALUES (3)"))
            return failed.value
        finally:
            await engine.dispose()

    error = asyncio.run(run())
    holder.join()
    assert database.unavailable(error)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM t").fetchone() == (0,)
