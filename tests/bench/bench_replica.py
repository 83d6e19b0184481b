"""Replica lag over real processes (not a test: pytest does not collect it): how long a large
partner import takes to reach the referrals service's replica (issue 16, item 13).

    .venv/bin/python -m tests.bench.bench_replica [--rows 20000]

Starts a private Redis, migrates fresh SQLite databases, runs ``handoff worker referrals``, then
imports ``--rows`` partners with ``handoff partners import`` (a real process, which commits them
and hands their changes to Redis) and waits until every one is in the replica at its version.
Baseline, in the same run: the import command alone, the directory's own share of the work.
"""

from __future__ import annotations

import argparse
import csv
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.dev.redis_server import RedisServer
from shared import geo
from tests.bench.figures import Figure, markdown

ROOT = Path(__file__).resolve().parents[2]
AIM_SECONDS = 30.0
CATEGORIES = ["primary_care", "orthopedics", "neurology", "physical_therapy", "chiropractic", "dietitian"]


def partners_csv(path: Path, rows: int) -> None:
    # Real ZIP codes around St. Petersburg, FL: the import refuses a ZIP that does not exist.
    zips = sorted(code for code in geo.known_zips() if code.startswith("337"))
    lines = ["name,category,email,phone,postal_code,languages,accepting_new_clients"]
    for n in range(rows):
        lines.append(
            f"Bench Partner {n},{CATEGORIES[n % len(CATEGORIES)]},p{n}@bench.example,"
            f"+1727555{n % 10000:04d},{zips[n % len(zips)]},English; Spanish,yes"
        )
    path.write_text("\n".join(lines) + "\n")


def replicated(db: Path) -> int:
    """Partners in the referrals replica (read-only; 0 until its table exists)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM partners").fetchone()[0]
    except sqlite3.Error:
        return 0


def run(*, rows: int, aim_seconds: float = AIM_SECONDS, aim_rows_per_s: float = 0.0) -> list[Figure]:
    """The replica's lag after importing ``rows`` partners (aim: ``aim_seconds``); with
    ``aim_rows_per_s``, the import's own rate too (issue 19's figure at 100,000 rows)."""
    handoff = str(Path(sys.executable).with_name("handoff"))
    with tempfile.TemporaryDirectory(prefix="bench-replica-") as tmp, RedisServer(Path(tmp) / "redis") as redis:
        data = Path(tmp) / "data"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")},
            "HANDOFF_DATA_DIR": str(data),
            "HANDOFF_REDIS_URL": redis.url,
            "HANDOFF_SECRET_KEY": "bench-replica-secret-key-0123456789abcdef",
            "HANDOFF_LOG_LEVEL": "WARNING",
        }
        subprocess.run([handoff, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT)
        source = Path(tmp) / "partners.csv"
        partners_csv(source, rows)
        worker = subprocess.Popen([handoff, "worker", "referrals"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            started = time.monotonic()
            subprocess.run([handoff, "partners", "import", str(source)], env=env, check=True, capture_output=True)
            imported = time.monotonic()
            deadline = imported + 900
            while replicated(data / "referrals.db") < rows:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{replicated(data / 'referrals.db')} of {rows} partners replicated after 15 min"
                    )
                time.sleep(0.1)
            arrived = time.monotonic()
        finally:
            worker.terminate()
            worker.wait(timeout=60)
        read_started = time.monotonic()
        with source.open(newline="") as opened:
            sum(1 for _ in csv.DictReader(opened))
        read_alone = max(time.monotonic() - read_started, 1e-6)
    total, alone = arrived - started, imported - started
    rate = (
        [
            Figure(
                name=f"CSV import, {rows:,} rows into an empty directory: rows/s",
                figure=round(rows / alone),
                unit="rows/s",
                baseline="the stdlib csv module reading the same file, nothing else",
                baseline_figure=round(rows / read_alone),
                aim=f"≥ {aim_rows_per_s:,.0f} rows/s",
                met=rows / alone >= aim_rows_per_s,
                notes="`handoff partners import`, a real process: read, check, store, stage PartnerChanged",
            )
        ]
        if aim_rows_per_s
        else []
    )
    return [
        *rate,
        Figure(
            name=f"{rows:,}-row import reaches the referrals replica",
            figure=round(total, 1),
            unit="s",
            baseline="the import command alone (`handoff partners import`)",
            baseline_figure=round(alone, 1),
            aim=f"≤ {aim_seconds:.0f} s",
            met=total <= aim_seconds,
            notes=f"the replica caught up {arrived - imported:.1f} s after the import command ended; "
            f"{rows / total:.0f} partners/s from start to replica",
        ),
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    measured = run(rows=args.rows)
    print(markdown(measured), flush=True)
    return measured


if __name__ == "__main__":
    main()
