"""One benchmark report: every benchmark in the repo, then the API fuzzing at its larger budget,
written as ``bench-report/report.md`` and ``report.json`` with the machine they ran on (not a
test: pytest does not collect it). ``make bench`` runs it.

    .venv/bin/python -m tests.bench.report [--quick] [--only directory referrals notifier replica scale fuzz]
                                           [--fuzz-examples 200] [--referrals-db-url URL] [--out DIR]

Each benchmark runs in turn with its own defaults (``--quick``: the smallest sizes and durations
each accepts, a smoke run of the whole chain, not figures to quote). Its figures are printed as
it finishes and each sits beside the baseline measured in the same run. A benchmark that fails
is reported with its error and the others still run; the exit status is 1 if any failed or the
fuzzing did not pass. Aims not met do not fail the run: benchmarks measure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import msgspec
import psutil

from tests.bench import bench_directory, bench_notifier, bench_referrals, bench_replica, bench_scale
from tests.bench.figures import Figure, markdown

ROOT = Path(__file__).resolve().parents[2]
FUZZ_TEST = "tests/e2e/test_api_fuzz.py"
# Each benchmark's module and its arguments for a quick run; a full run uses the module's defaults.
BENCHMARKS = {
    "directory": (
        bench_directory,
        ["--sizes", "1000", "--seconds", "1", "--repeat", "1", "--rate", "20", "--connections", "4"],
    ),
    "referrals": (
        bench_referrals,
        ["--partners", "20", "--creates", "30", "--concurrency", "2", "--rate", "5", "--seconds", "4"],
    ),
    "notifier": (bench_notifier, ["--emails", "100", "--latency-seconds", "2"]),
    "replica": (bench_replica, ["--rows", "1000"]),
    # A million partners and a million referrals (issue 19), built once and kept outside the repo.
    "scale": (
        bench_scale,
        ["--partners", "20000", "--import-rows", "2000", "--referrals", "20000", "--seconds", "2", "--requests", "20"],
    ),
}
LIBRARIES = [
    "litestar",
    "uvicorn",
    "msgspec",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "redis",
    "rq",
    "aiosmtpd",
    "schemathesis",
]


class Machine(msgspec.Struct, kw_only=True):
    """What the figures were measured on, and when."""

    date: str
    git_commit: str
    git_dirty: bool
    cpu_model: str
    cores_logical: int
    cores_physical: int
    ram_gib: float
    os: str
    kernel: str
    python: str
    sqlite: str
    redis: str
    postgresql: str
    wrk: str
    libraries: dict[str, str]
    load_before: list[float]
    load_after: list[float] = []


class Benchmark(msgspec.Struct, kw_only=True):
    """One benchmark's figures (or its error), with the command that runs it alone."""

    name: str
    command: str
    seconds: float
    load_before: list[float]
    load_after: list[float]
    figures: list[Figure]
    error: str = ""


class Fuzz(msgspec.Struct, kw_only=True):
    """The API fuzzing test at the bench budget: whether it passed and what pytest said."""

    command: str
    examples: int
    passed: bool
    exit_status: int
    seconds: float
    summary: str


class Report(msgspec.Struct, kw_only=True):
    quick: bool
    machine: Machine
    benchmarks: list[Benchmark]
    fuzz: Fuzz | None = None


# --- the machine -------------------------------------------------------------------------------


def _loadavg() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _output(*argv: str) -> str:
    """The first line ``argv`` prints, or why there is none."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _postgresql(url: str) -> str:
    """The server version behind ``url``, when the referrals benchmark was given one."""
    if not url.startswith("postgresql"):
        return "not used (the benchmarks ran on SQLite)"
    from sqlalchemy import text

    from shared import database
    from shared.config import normalise_db_url

    async def version() -> str:
        engine = database.create_engine(normalise_db_url(url))
        try:
            async with engine.connect() as connection:
                return (await connection.execute(text("SELECT version()"))).scalar_one()
        finally:
            await engine.dispose()

    return asyncio.run(version())


def machine(*, referrals_db_url: str) -> Machine:
    """The machine as it is now (``load_after`` is filled in at the end)."""
    from services.dev.redis_server import executable

    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    try:
        os_name = platform.freedesktop_os_release()["PRETTY_NAME"]
    except OSError:
        os_name = platform.platform()
    return Machine(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        git_commit=_output("git", "rev-parse", "HEAD"),
        git_dirty=bool(_output("git", "status", "--porcelain")),
        cpu_model=_cpu_model(),
        cores_logical=psutil.cpu_count() or 0,
        cores_physical=psutil.cpu_count(logical=False) or 0,
        ram_gib=round(psutil.virtual_memory().total / 2**30, 1),
        os=os_name,
        kernel=platform.release(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        sqlite=sqlite3.sqlite_version,
        redis=_output(executable(), "--version"),
        postgresql=_postgresql(referrals_db_url),
        wrk=_output("wrk", "--version"),
        libraries={name: installed(name) for name in LIBRARIES},
        load_before=_loadavg(),
    )


# --- running ------------------------------------------------------------------------------------


def benchmark(name: str, argv: list[str]) -> Benchmark:
    """Run one benchmark in this process; its error, if any, is kept rather than raised."""
    module, _ = BENCHMARKS[name]
    command = " ".join([".venv/bin/python -m", module.__name__, *argv])
    print(f"\n## {name}: {command}", flush=True)
    load_before, started = _loadavg(), time.monotonic()
    figures: list[Figure] = []
    error = ""
    try:
        figures = module.main(argv)
    except (Exception, SystemExit) as failure:
        error = "".join(traceback.format_exception_only(failure)).strip()
        if not isinstance(failure, SystemExit):
            error += "\n" + "".join(traceback.format_tb(failure.__traceback__)[-3:])
        print(f"{name} failed: {error}", file=sys.stderr, flush=True)
    return Benchmark(
        name=name,
        command=command,
        seconds=round(time.monotonic() - started, 1),
        load_before=load_before,
        load_after=_loadavg(),
        figures=figures,
        error=error,
    )


def pytest_summary(output: str) -> str:
    """What pytest said in short: each distinct error line (``E …``), then its short test summary
    (or, without one, its last lines)."""
    lines = output.strip().splitlines()
    errors = list(dict.fromkeys(line for line in lines if line.startswith("E ")))[:10]
    marks = [n for n, line in enumerate(lines) if "short test summary info" in line]
    return "\n".join(errors + lines[marks[-1] if marks else -5 :])


def fuzz(*, examples: int, log: Path) -> Fuzz:
    """The API fuzzing test with ``examples`` per operation; its whole output goes to ``log``."""
    argv = [sys.executable, "-m", "pytest", "-q", "-rfE", "--tb=short", "-p", "no:cacheprovider", FUZZ_TEST]
    command = f"HANDOFF_TEST_FUZZ_EXAMPLES={examples} .venv/bin/pytest -q -rfE --tb=short {FUZZ_TEST}"
    print(f"\n## API fuzzing: {command}", flush=True)
    started = time.monotonic()
    with log.open("w") as output:
        try:
            # Generous: only a guard against a run that hangs.
            status = subprocess.run(
                argv,
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=4 * 3600,
                env={**os.environ, "HANDOFF_TEST_FUZZ_EXAMPLES": str(examples)},
            ).returncode
        except subprocess.TimeoutExpired as timeout:
            status = -1
            output.write(f"\nstopped after {timeout.timeout:.0f} s\n")
    summary = pytest_summary(log.read_text())
    print(summary, flush=True)
    return Fuzz(
        command=command,
        examples=examples,
        passed=status == 0,
        exit_status=status,
        seconds=round(time.monotonic() - started, 1),
        summary=summary,
    )


# --- writing ----------------------------------------------------------------------------------


def _load(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


def to_markdown(report: Report) -> str:
    """The whole report as Markdown."""
    m = report.machine
    figures = [f for b in report.benchmarks for f in b.figures]
    missed = [f.name for f in figures if f.met is False]
    lines = [
        "# Handoff benchmark report" + (" (quick smoke run: sizes too small to quote)" if report.quick else ""),
        "",
        f"{m.date} · commit `{m.git_commit[:12]}`{' with uncommitted changes' if m.git_dirty else ''} · "
        f"aims met: {sum(f.met is True for f in figures)} of {sum(f.met is not None for f in figures)}"
        + (f" (not met: {'; '.join(missed)})" if missed else ""),
        "",
        "Every figure sits beside the baseline measured in the same run, on the same machine.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        f"| CPU | {m.cpu_model}, {m.cores_physical} cores / {m.cores_logical} threads |",
        f"| RAM | {m.ram_gib} GiB |",
        f"| load average (1, 5, 15 min) | before {_load(m.load_before)} · after {_load(m.load_after)} |",
        f"| OS, kernel | {m.os}, {m.kernel} |",
        f"| Python | {m.python} |",
        f"| SQLite | {m.sqlite} |",
        f"| Redis | {m.redis} |",
        f"| PostgreSQL | {m.postgresql} |",
        f"| wrk | {m.wrk} |",
        f"| libraries | {', '.join(f'{name} {version}' for name, version in m.libraries.items())} |",
    ]
    for b in report.benchmarks:
        lines += [
            "",
            f"## {b.name.capitalize()}",
            "",
            f"`{b.command}` · {b.seconds:.0f} s · load before {_load(b.load_before)}, after {_load(b.load_after)}",
            "",
        ]
        lines += [f"**Failed:**\n\n```\n{b.error}\n```"] if b.error else [markdown(b.figures)]
    if report.fuzz:
        f = report.fuzz
        lines += [
            "",
            f"## API fuzzing ({f.examples} examples per operation)",
            "",
            f"`{f.command}` · **{'passed' if f.passed else 'FAILED'}** (exit status {f.exit_status}) · "
            f"{f.seconds:.0f} s · whole output in `fuzz.log`",
            "",
            "```",
            f.summary,
            "```",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest sizes and durations: a smoke run")
    parser.add_argument("--only", nargs="+", choices=[*BENCHMARKS, "fuzz"], default=[*BENCHMARKS, "fuzz"])
    parser.add_argument("--fuzz-examples", type=int, help="examples per operation (default 200; 5 with --quick)")
    parser.add_argument("--referrals-db-url", default="", help="the referrals benchmark's database (default SQLite)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-report")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    about = machine(referrals_db_url=args.referrals_db_url)
    benchmarks = []
    for name, (_, quick) in BENCHMARKS.items():
        if name in args.only:
            uses_db = name in ("referrals", "scale") and args.referrals_db_url
            extra = ["--db-url", args.referrals_db_url] if uses_db else []
            benchmarks.append(benchmark(name, (quick if args.quick else []) + extra))
    examples = args.fuzz_examples or (5 if args.quick else 200)
    fuzzed = fuzz(examples=examples, log=args.out / "fuzz.log") if "fuzz" in args.only else None
    about.load_after = _loadavg()

    report = Report(quick=args.quick, machine=about, benchmarks=benchmarks, fuzz=fuzzed)
    text = to_markdown(report)
    (args.out / "report.md").write_text(text)
    (args.out / "report.json").write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
    print("\n" + text + f"\nWritten: {args.out / 'report.md'} and {args.out / 'report.json'}")
    return 1 if any(b.error for b in benchmarks) or (fuzzed and not fuzzed.passed) else 0


if __name__ == "__main__":
    sys.exit(main())
