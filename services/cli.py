"""The ``handoff`` command: one entry point for every process and admin task.

Each verb imports only the service it starts, so ``handoff worker notifier`` never loads the
web apps.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from shared import logs, telemetry
from shared.config import ConfigError, Settings, load_settings

Service = Literal["directory", "referrals"]
SERVICES: tuple[Service, ...] = ("directory", "referrals")
WORKERS = ("notifier", "referrals", "directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="handoff", description="Handoff: referral network for bodywork clinics")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    verbs.add_parser("dev", help="run everything on this machine (private Redis, SQLite, SMTP catcher)")

    serve = verbs.add_parser("serve", help="run one web service")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--host", help="bind address (default HANDOFF_HOST)")
    serve.add_argument("--port", type=int, help="port (default HANDOFF_DIRECTORY_PORT / HANDOFF_REFERRALS_PORT)")

    worker = verbs.add_parser("worker", help="run one RQ worker")
    worker.add_argument("name", choices=WORKERS)
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    health = verbs.add_parser("worker-health", help="exit 1 unless this host's workers keep their heartbeat")
    health.add_argument("name", choices=WORKERS)
    health.add_argument("--pid", type=int, help="check the worker with this process id only")

    notifier = verbs.add_parser("notifier", help="emails the notifier gave up on")
    notifier_verbs = notifier.add_subparsers(dest="notifier_verb", required=True, metavar="COMMAND")
    notifier_verbs.add_parser("failed", help="list failed email jobs with their reasons")
    requeue = notifier_verbs.add_parser("requeue", help="send failed email jobs again (never twice)")
    requeue_which = requeue.add_mutually_exclusive_group(required=True)
    requeue_which.add_argument("job_id", nargs="?", metavar="ID", help="a job id from `handoff notifier failed`")
    requeue_which.add_argument("--all", action="store_true", help="every failed email job")

    db = verbs.add_parser("db", help="database tasks")
    db_verbs = db.add_subparsers(dest="db_verb", required=True, metavar="COMMAND")
    upgrade = db_verbs.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("service", nargs="?", choices=(*SERVICES, "all"), default="all")
    check = db_verbs.add_parser("check", help="exit 1 if a database's schema is behind the code")
    check.add_argument("service", nargs="?", choices=(*SERVICES, "all"), default="all")

    for verb, text in (
        ("backup", "copy each database into DIR (SQLite: online backup; PostgreSQL: pg_dump)"),
        ("restore", "load the copies in DIR into empty databases (SQLite or pg_restore)"),
    ):
        copy = verbs.add_parser(verb, help=text)
        copy.add_argument("dir", type=Path, metavar="DIR")
        copy.add_argument("--service", choices=(*SERVICES, "all"), default="all")

    user = verbs.add_parser("user", help="staff accounts")
    user_verbs = user.add_subparsers(dest="user_verb", required=True, metavar="COMMAND")
    add = user_verbs.add_parser("add", help="add a staff account (password read from stdin)")
    add.add_argument("--email", required=True)
    add.add_argument("--role", required=True, choices=("admin", "therapist"))
    user_verbs.add_parser("list", help="list staff accounts")
    for verb, text in (
        ("disable", "stop an account from logging in (and sign it out of the directory)"),
        ("enable", "let a disabled account log in"),
    ):
        toggle = user_verbs.add_parser(verb, help=text)
        toggle.add_argument("--email", required=True)
    signout = user_verbs.add_parser("signout", help="end every sign-in of an account, on both services")
    signout.add_argument("--email", required=True)
    role = user_verbs.add_parser("role", help="change an account's role (and sign it out of the directory)")
    role.add_argument("--email", required=True)
    role.add_argument("--role", required=True, choices=("admin", "therapist"))
    seed = verbs.add_parser("seed", help="fill the directory with sample data")
    seed.add_argument("--demo", action="store_true", required=True, help="fictional partners around St. Petersburg, FL")

    partners = verbs.add_parser("partners", help="directory partners: CSV import/export, republish")
    partner_verbs = partners.add_subparsers(dest="partners_verb", required=True, metavar="COMMAND")
    import_ = partner_verbs.add_parser("import", help="create or update partners from a CSV file")
    import_.add_argument("file", type=Path, metavar="FILE.csv")
    import_.add_argument("--skip-invalid", action="store_true", help="import the good rows even if some are bad")
    export = partner_verbs.add_parser("export", help="write every partner as CSV (the import's columns)")
    export.add_argument("file", nargs="?", type=Path, metavar="FILE", help="default: standard output")
    partner_verbs.add_parser("republish", help="send every partner's current state to the referrals service again")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"handoff: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.verb != "dev" and "HANDOFF_REDIS_URL" not in os.environ:
        settings = _beside_dev(settings)
    logs.configure(level=settings.log_level, fmt=settings.log_format)
    if args.verb in ("serve", "worker"):
        telemetry.setup(args.service if args.verb == "serve" else f"{args.name}-worker")
    handler: Callable[[argparse.Namespace, Settings], int | None] = {
        "dev": _dev,
        "serve": _serve,
        "worker": _worker,
        "worker-health": _worker_health,
        "db": _db,
        "backup": _copy,
        "restore": _copy,
        "user": _user,
        "notifier": _notifier,
        "seed": _seed,
        "partners": _partners,
    }[args.verb]
    try:
        return handler(args, settings) or 0
    except KeyboardInterrupt:
        return 130


def _beside_dev(settings: Settings) -> Settings:
    """The settings, with the private Redis of a ``handoff dev`` running on the same data dir."""
    import msgspec

    from services.dev.redis_server import url_file

    path = url_file(settings)
    if not path.exists():
        return settings
    return msgspec.structs.replace(settings, redis_url=path.read_text().strip())


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from services.dev.supervisor import run

    return run(settings)


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    if args.service == "directory":
        from services.directory.web.app import create_app
    else:
        from services.referrals.web.app import create_app
    port = args.port or getattr(settings, f"{args.service}_port")
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=port,
        log_level=settings.log_level.lower(),
        # The client's address (each rate-limit bucket's) comes from X-Forwarded-For only when
        # the peer is one of the clinic's own proxies; otherwise anyone could claim any address.
        proxy_headers=bool(settings.proxies),
        forwarded_allow_ips=settings.proxies or None,
        server_header=False,
        # uvicorn's access log would record partner-link tokens (/respond/{token}): each app
        # writes a redacting one (shared.access). Logging is shared.logs's, not uvicorn's own.
        access_log=False,
        log_config=None,
    )


def _worker(args: argparse.Namespace, settings: Settings) -> None:
    if args.name == "notifier":
        from services.notifier.worker import main as run_worker
    elif args.name == "directory":
        from services.directory.worker import main as run_worker
    else:
        from services.referrals.worker import main as run_worker
    run_worker(settings, burst=args.burst)


def _worker_health(args: argparse.Namespace, settings: Settings) -> int:
    from shared import heartbeat, queues

    queue = {"notifier": queues.NOTIFICATIONS, "directory": queues.DIRECTORY}.get(args.name, queues.REFERRALS)
    found = heartbeat.problems(
        data_dir=settings.data_path, queue=queue, interval=settings.worker_heartbeat_seconds, pid=args.pid
    )
    for problem in found:
        print(f"handoff: {problem}", file=sys.stderr)
    return 1 if found else 0


def _notifier(args: argparse.Namespace, settings: Settings) -> int:
    from services.notifier import commands, failures

    if args.notifier_verb == "failed":
        found = commands.failed(settings)
        print(failures.HEADER)
        for failed in found:
            print(failures.format_line(failed))
        print(f"handoff: {len(found)} failed email job(s)", file=sys.stderr)
        return 0
    try:
        ids = commands.requeue(settings, None if args.all else [args.job_id])
    except failures.NotFailed as exc:
        print(f"handoff: {exc}", file=sys.stderr)
        return 1
    print(f"handoff: requeued {len(ids)} email job(s)")
    return 0


def upgrade_databases(settings: Settings, services: tuple[Service, ...] = SERVICES) -> None:
    from shared.database import upgrade

    for service in services:
        upgrade(migrations=_migrations(service), url=settings.db_url(service))


def _db(args: argparse.Namespace, settings: Settings) -> int:
    services = SERVICES if args.service == "all" else (args.service,)
    if args.db_verb == "upgrade":
        upgrade_databases(settings, services)
        print(f"handoff: {', '.join(services)} database(s) up to date")
        return 0
    import asyncio

    from shared import database, schema

    behind = 0
    for service in services:
        engine = database.create_engine(settings.db_url(service))
        try:
            found = asyncio.run(schema.check(engine, _migrations(service)))
        finally:
            asyncio.run(engine.dispose())
        print(f"handoff: {service}: {found.describe()}", file=sys.stderr if found.behind else sys.stdout)
        behind += found.behind
    return 1 if behind else 0


def _migrations(service: Service) -> Path:
    if service == "directory":
        from services.directory.storage import MIGRATIONS
    else:
        from services.referrals.storage import MIGRATIONS
    return MIGRATIONS


def _copy(args: argparse.Namespace, settings: Settings) -> int:
    from shared import backup

    services = SERVICES if args.service == "all" else (args.service,)
    try:
        for service in services:
            url = settings.db_url(service)
            path = args.dir / backup.file_name(url, service)
            if args.verb == "backup":
                args.dir.mkdir(parents=True, exist_ok=True)
                backup.backup(url=url, to=path)
                print(f"handoff: {service} backed up to {path}")
            else:
                backup.restore(url=url, source=path)
                print(f"handoff: {service} restored from {path}")
    except backup.BackupError as exc:
        print(f"handoff: {exc}", file=sys.stderr)
        return 1
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise SystemExit("handoff: the passwords do not match")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _user(args: argparse.Namespace, settings: Settings) -> int:
    from services.referrals import commands, identity
    from shared.errors import DomainError

    def described(account: identity.StaffAccount) -> str:
        return f"handoff: {account.email} is {'active' if account.active else 'disabled'}, {account.role}"

    try:
        if args.user_verb == "add":
            commands.add_user(settings, email=args.email, role=args.role, password=_read_password())
            print(f"handoff: added {args.role} {args.email.strip().lower()}")
        elif args.user_verb == "list":
            for a in commands.list_users(settings):
                print(f"{a.email}\t{a.role}\t{'active' if a.active else 'disabled'}")
        elif args.user_verb == "signout":
            signed_out = commands.sign_out_everywhere(settings, email=args.email)
            print(f"handoff: {signed_out.email} is signed out everywhere")
        else:
            # Disabling or changing a role also revokes the account's tokens for the directory.
            active = {"enable": True, "disable": False}.get(args.user_verb)
            changed = commands.change_user(settings, email=args.email, role=getattr(args, "role", None), active=active)
            print(described(changed))
    except DomainError as exc:
        print(f"handoff: {exc.field}: {exc.detail}", file=sys.stderr)
        return 1
    except identity.NotRevoked as warning:
        # Saved, but not yet in force in the directory: a failure for scripts, with the remedy.
        print(described(warning.account))
        print(f"handoff: {warning}; run this command again once Redis answers", file=sys.stderr)
        return 1
    return 0


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    from services.directory.commands import seed_demo

    report = seed_demo(settings)
    print(f"handoff: demo partners: {report.created} created, {report.updated} updated, {report.unchanged} unchanged")
    return 0


def _partners(args: argparse.Namespace, settings: Settings) -> int:
    from services.directory import commands
    from shared.errors import DomainError

    if args.partners_verb == "republish":
        print(f"handoff: republished {commands.republish(settings)} partner(s)")
        return 0
    if args.partners_verb == "export":
        if args.file is None:
            count = commands.export_file(settings, sys.stdout)
        else:
            with args.file.open("w", encoding="utf-8", newline="") as out:
                count = commands.export_file(settings, out)
        print(f"handoff: exported {count} partner(s)", file=sys.stderr)
        return 0
    try:
        report = commands.import_file(settings, args.file, skip_invalid=args.skip_invalid)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"handoff: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"handoff: {args.file}: {exc.detail}", file=sys.stderr)
        return 1
    for error in report.errors:
        print(f"handoff: {args.file}: {error}", file=sys.stderr)
    if report.more_errors:
        print(f"handoff: {args.file}: and {report.more_errors} more bad row(s)", file=sys.stderr)
    if report.rejected:
        print(
            f"handoff: {report.error_count} bad row(s); nothing imported (--skip-invalid imports the rest)",
            file=sys.stderr,
        )
        return 1
    print(
        f"handoff: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.skipped} skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
