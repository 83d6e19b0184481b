"""The whole system as separate real processes that a fault drill can break one part at a time:
a private Redis (AOF on) it can restart, an SMTP server it can stop and start on the same port,
both web services and both workers started with ``python -m services.cli``, and a steady stream
of referrals posted through the API while the fault happens. Each drill ends in a :class:`Tally`
of what it counted, printed, written to ``test-artifacts/fault-drills/<drill>.json`` and listed
at the end of the pytest run."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from services.dev import processes
from services.dev.ports import free_port, wait_for_port
from services.dev.redis_server import RedisServer
from services.referrals.storage import clients, offers, outbox, referrals
from shared import codec, database
from shared.config import normalise_db_url
from shared.messages import SendEmail
from tests.support.polling import wait_for
from tests.support.reports import DRILL_SUMMARIES
from tests.support.smtp import Counting, SmtpServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "fault-drills"
PASSWORD = "fault drills 2026"
THERAPIST = "tess@clinic.example"
PARTNERS = 4
REFERENCE = re.compile(r"\bHX-[A-Z2-9]{8}\b")
CONSENT = {"given": True, "method": "verbal", "scope": ["clinical"]}
# Generous waits for other processes, never asserted as speed.
START_LIMIT_SECONDS = 90
READY_LIMIT_SECONDS = 60


class Mailbox(Counting):
    """An SMTP handler that counts, besides each Message-ID (:class:`Counting`, including its
    hold), each offer email by the referral reference in its subject."""

    def __init__(self) -> None:
        super().__init__()
        self.offers: Counter[str] = Counter()
        self.reference_of: dict[str, str] = {}  # Message-ID -> reference

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        found = REFERENCE.search(str(message["Subject"]))
        if found and str(message["To"]).endswith("@partners.example"):
            self.offers[found.group(0)] += 1
            self.reference_of[str(message["Message-ID"]).strip()] = found.group(0)
        return await super().handle_DATA(server, session, envelope)


class Process:
    """One ``python -m services.cli ...`` child, its output in ``log``."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *self.argv],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=processes.die_with_parent,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as the OOM killer would: no cleanup of any kind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        processes.stop(self.process, timeout=20)


# How often the stream sends a refused (503) request again before it counts it refused.
RETRIES_AFTER_503 = 60


@dataclass
class Attempt:
    """One ``POST /api/v1/referrals`` of the stream and what it answered."""

    key: str
    body: dict
    status: int = 0
    answer: dict = field(default_factory=dict)
    retry_after: str | None = None
    error: str = ""
    started: float = 0.0  # time.monotonic()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Stream:
    """Posts ``count`` referrals, each with its own Idempotency-Key, one partner after another,
    through ``lanes`` clients at once (therapists at work), each posting every ``interval``
    seconds; keeps every answer. Runs beside the fault. With ``retry_503``, a request refused
    with 503 is sent again (same Idempotency-Key) after its Retry-After, as a client would."""

    def __init__(
        self, stack: Stack, drill: str, *, count: int, interval: float, lanes: int = 1, retry_503: bool = False
    ) -> None:
        self.stack, self.drill, self.count, self.interval = stack, drill, count, interval
        self.retry_503 = retry_503
        self.attempts: list[Attempt] = []
        self.began = 0.0
        self._lanes = [
            threading.Thread(target=self._post, args=(lane, lanes), name=f"{drill}-{lane}", daemon=True)
            for lane in range(lanes)
        ]

    def start(self) -> None:
        self.began = time.monotonic()
        for lane in self._lanes:
            lane.start()

    def join(self) -> None:
        for lane in self._lanes:
            lane.join()

    def _post(self, first: int, step: int) -> None:
        with self.stack.client() as client:
            for i in range(first, self.count, step):
                started = time.monotonic()
                body = {
                    "client": {"name": f"{self.drill} client {i}", "phone": "727-555-0142"},
                    "consent": CONSENT,
                    "reasons": ["rehab_exercise_needed"],
                    "partner_ids": [self.stack.partner_ids[i % len(self.stack.partner_ids)]],
                }
                attempt = self.stack.post_referral(client, Attempt(key=str(uuid.uuid4()), body=body))
                self.attempts.append(attempt)
                # A 503 (sign-ins cannot be checked while Redis is away) asks for the same request
                # again after Retry-After, as a therapist's client would: same Idempotency-Key.
                for _ in range(RETRIES_AFTER_503 if self.retry_503 else 0):
                    if attempt.status != 503:
                        break
                    time.sleep(min(float(attempt.retry_after or 1), 1.0))
                    attempt = self.stack.post_referral(client, Attempt(key=attempt.key, body=body))
                    self.attempts.append(attempt)
                time.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def wait_for_progress(self, done: int, *, limit: float = 60) -> None:
        wait_for(lambda: len(self.attempts) >= done, limit=limit, what=f"{done} referrals posted")


@dataclass
class Tally:
    """What a drill counted. ``sent``: distinct requests (a retry under the same Idempotency-Key
    is the same request); ``accepted``: those answered 2xx in the end; ``refused``: every non-2xx
    answer by status; ``lost``: referrals answered 2xx but not stored, or stored but whose offer
    email never arrived; ``duplicates``: offer emails received beyond the first per referral."""

    drill: str
    sent: int = 0
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    received: int = 0
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0  # from the first request to the count, for the report only
    notes: dict = field(default_factory=dict)

    def line(self) -> str:
        refused = ", ".join(f"{n}x{status}" for status, n in sorted(self.refused.items())) or "none"
        notes = "; ".join(f"{k} {v}" for k, v in self.notes.items())
        return (
            f"{self.drill}: sent {self.sent}, 2xx {self.accepted}, refused {refused}, stored {self.stored}, "
            f"emails received {self.received}, duplicates {self.duplicates}, lost {self.lost}"
            + f"; {self.seconds:.0f} s"
            + (f" ({notes})" if notes else "")
        )

    def publish(self, config: pytest.Config) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{self.drill}.json").write_text(json.dumps(asdict(self), indent=2) + "\n")
        print(f"\nfault drill {self.line()}", flush=True)
        config.stash.setdefault(DRILL_SUMMARIES, []).append(self.line())


@dataclass
class Stored:
    """One stored referral of a drill and what was written with it."""

    reference: str
    offers: int
    offered: int
    offer_emails_staged: int


class Stack:
    """Redis, SMTP, both services and both workers for one drill module; see the module doc."""

    def __init__(self, root: Path, *, directory_db_url: str = "", referrals_db_url: str = "") -> None:
        self.root = root
        self.redis = RedisServer(root / "redis")
        self.mailbox = Mailbox()
        self.smtp: SmtpServer | None = None
        self.smtp_port = free_port()
        directory_port, referrals_port = free_port(), free_port()
        self.directory_url = f"http://127.0.0.1:{directory_port}"
        self.referrals_url = f"http://127.0.0.1:{referrals_port}"
        self.referrals_db_url = normalise_db_url(referrals_db_url) or f"sqlite+aiosqlite:///{root / 'referrals.db'}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")},
            "HANDOFF_DATA_DIR": str(root),
            "HANDOFF_REDIS_URL": self.redis.url,
            "HANDOFF_SMTP_PORT": str(self.smtp_port),
            "HANDOFF_DIRECTORY_PORT": str(directory_port),
            "HANDOFF_REFERRALS_PORT": str(referrals_port),
            "HANDOFF_SECRET_KEY": uuid.uuid4().hex * 2,
            "HANDOFF_RELAY_INTERVAL_SECONDS": "0.2",
            "HANDOFF_DIRECTORY_DB_URL": directory_db_url,
            "HANDOFF_REFERRALS_DB_URL": self.referrals_db_url,
        }
        self.log = root / "system.log"
        self.processes = {
            name: Process(name, argv, env=self.env, log=self.log)
            for name, argv in (
                ("directory", ["serve", "directory"]),
                ("referrals", ["serve", "referrals"]),
                ("referrals-worker", ["worker", "referrals"]),
                ("notifier", ["worker", "notifier"]),
            )
        }
        self.headers: dict[str, str] = {}
        self.partner_ids: list[str] = []

    # ------------------------------------------------------------------ life

    def start(self) -> Stack:
        self.redis.start()
        self.smtp_up()
        self.cli("db", "upgrade")
        for address, role in (("admin@clinic.example", "admin"), (THERAPIST, "therapist")):
            self.cli("user", "add", "--email", address, "--role", role, stdin=PASSWORD + "\n")
        for process in self.processes.values():
            process.start()
        for url in (self.directory_url, self.referrals_url):
            self.wait(lambda url=url: self.answers(url, "/health"), limit=START_LIMIT_SECONDS, what=f"{url}/health")
        admin = {"Authorization": f"Bearer {self.token('admin@clinic.example')}"}
        self.headers = {"Authorization": f"Bearer {self.token(THERAPIST)}"}
        with httpx.Client(base_url=self.directory_url, timeout=30) as directory:
            for i in range(PARTNERS):
                created = directory.post(
                    "/api/v1/partners",
                    headers=admin,
                    json={
                        "name": f"Bay Physio {i}",
                        "category": "physical_therapy",
                        "email": f"pt-{i}@partners.example",
                        "accepting_new_clients": "yes",
                    },
                )
                assert created.status_code == 201, created.text
                self.partner_ids.append(created.json()["id"])
        self.wait(self._replicated, limit=START_LIMIT_SECONDS, what="the partners in the referrals replica")
        return self

    def stop(self) -> None:
        for name in ("notifier", "referrals-worker", "referrals", "directory"):
            self.processes[name].stop()
        self.smtp_down()
        self.redis.stop()

    def cli(self, *args: str, stdin: str = "") -> None:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            input=stdin,
            text=True,
            capture_output=True,
            env=self.env,
            cwd=ROOT,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr

    def token(self, address: str) -> str:
        answer = httpx.post(
            f"{self.referrals_url}/api/v1/auth/token", json={"email": address, "password": PASSWORD}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def _replicated(self) -> bool:
        answer = httpx.post(
            f"{self.referrals_url}/api/v1/referrals/suggestions",
            headers=self.headers,
            json={"reasons": ["rehab_exercise_needed"], "limit": 50},
            timeout=30,
        )
        return answer.status_code == 200 and set(self.partner_ids) <= {s["partner_id"] for s in answer.json()}

    # ------------------------------------------------------------------ parts a drill breaks

    def smtp_up(self) -> None:
        """(Re)start the SMTP server on the same port, counting into the same mailbox."""
        self.mailbox.release.clear()
        # Entered and left by hand: the server's life spans drills, not one block.
        self.smtp = SmtpServer(self.mailbox, port=self.smtp_port).__enter__()

    def smtp_down(self) -> None:
        if self.smtp is not None:
            self.smtp.__exit__(None, None, None)
            self.smtp = None
        wait_for(lambda: not self.answers_port(self.smtp_port), limit=10, what="the SMTP port to close")

    @staticmethod
    def answers_port(port: int) -> bool:
        try:
            wait_for_port(port, timeout=0.2)
        except TimeoutError:
            return False
        return True

    def ready(self, url: str) -> httpx.Response | None:
        try:
            return httpx.get(f"{url}/ready", timeout=30)
        except httpx.TransportError:
            return None

    @staticmethod
    def answers(url: str, path: str) -> bool:
        try:
            return httpx.get(f"{url}{path}", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def all_ready(self) -> bool:
        return all(
            (r := self.ready(url)) is not None and r.status_code == 200
            for url in (self.directory_url, self.referrals_url)
        )

    def pids(self) -> dict[str, int | None]:
        """Each process's pid, None for one that has exited."""
        return {name: p.pid if p.alive() else None for name, p in self.processes.items()}

    # ------------------------------------------------------------------ the stream and its audit

    def client(self) -> httpx.Client:
        """A client of the referrals service (long timeout: a request may wait out a lock)."""
        return httpx.Client(base_url=self.referrals_url, timeout=60)

    def post_referral(self, client: httpx.Client, attempt: Attempt) -> Attempt:
        """Post ``attempt``'s body under its Idempotency-Key and note the answer on it."""
        attempt.started = time.monotonic()
        try:
            answer = client.post(
                "/api/v1/referrals", json=attempt.body, headers={**self.headers, "Idempotency-Key": attempt.key}
            )
        except httpx.TransportError as exc:
            attempt.status, attempt.error = 0, f"{type(exc).__name__}: {exc}"
            return attempt
        finally:
            attempt.seconds = time.monotonic() - attempt.started
        attempt.status, attempt.retry_after = answer.status_code, answer.headers.get("retry-after")
        try:
            attempt.answer = answer.json()
        except ValueError:
            attempt.error = answer.text[:500]
        return attempt

    def stored(self, drill: str) -> dict[str, Stored]:
        """The drill's referrals as stored (by id), each with its offers and staged offer emails."""

        async def read() -> dict[str, Stored]:
            engine = database.create_engine(self.referrals_db_url, reads_only=True)
            try:
                async with engine.connect() as connection:
                    named = select(referrals.c.id, referrals.c.reference, clients.c.name).join(
                        clients, clients.c.id == referrals.c.client_id
                    )
                    rows = (await connection.execute(named)).all()
                    mine = {r.id: r.reference for r in rows if r.name.startswith(f"{drill} client ")}
                    by_offer = Counter()
                    offered = Counter()
                    for row in (await connection.execute(select(offers.c.referral_id, offers.c.status))).all():
                        by_offer[row.referral_id] += 1
                        offered[row.referral_id] += row.status == "offered"
                    staged = Counter()
                    for row in (await connection.execute(select(outbox.c.payload))).all():
                        message = codec.decode(row.payload)
                        if isinstance(message, SendEmail) and message.kind == "offer":
                            staged[message.referral_id] += 1
            finally:
                await engine.dispose()
            return {
                rid: Stored(reference=ref, offers=by_offer[rid], offered=offered[rid], offer_emails_staged=staged[rid])
                for rid, ref in mine.items()
            }

        return asyncio.run(read())

    def tally(self, stream: Stream, *, limit: float, retries: list[Attempt] = ()) -> Tally:
        """Wait (up to ``limit`` s) for the offer email of every referral the drill stored, and
        for the notifications queue to settle (a duplicate would still be in it), then count.
        ``retries``: the same requests sent again (same Idempotency-Key) after a refusal."""
        stored = self.stored(stream.drill)
        references = {s.reference for s in stored.values()}
        self.wait(
            lambda: references <= set(self.mailbox.offers),
            limit=limit,
            what=f"the offer email of each of {len(stored)} referrals",
            fail=False,
        )
        self.wait(self._notifications_settled, limit=limit, what="the notifications queue to settle", fail=False)
        attempts = [*stream.attempts, *retries]
        accepted = {a.key: a.answer.get("reference") for a in attempts if a.ok}
        received = {ref for ref in references if self.mailbox.offers[ref]}
        return Tally(
            drill=stream.drill,
            sent=len({a.key for a in attempts}),
            accepted=len(accepted),
            refused=dict(Counter(str(a.status or a.error.split(":")[0]) for a in attempts if not a.ok)),
            stored=len(stored),
            received=len(received),
            duplicates=sum(self.mailbox.offers[ref] - 1 for ref in received),
            lost=len((set(accepted.values()) - references) | (references - received)),
            seconds=round(time.monotonic() - stream.began, 1),
        )

    def _notifications_settled(self) -> bool:
        from redis import Redis

        from services.notifier.ledger import CLAIM_KEY
        from tests.support.notifier import idle

        # A claim still held means an email is being sent, or waits for a dead worker's claim to
        # lapse before its retry sends it: the queue can look idle between two of those retries.
        with Redis.from_url(self.redis.url) as redis:
            return not any(redis.scan_iter(match=CLAIM_KEY.format("*"), count=1000)) and idle(redis)

    def wait(self, condition: Callable[[], bool], *, limit: float, what: str, fail: bool = True) -> bool:
        """:func:`wait_for` with the system's log tail on failure; ``fail=False`` returns False instead."""
        try:
            wait_for(condition, limit=limit, what=what)
        except pytest.fail.Exception as exc:
            if not fail:
                return False
            tail = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            pytest.fail(f"{exc}\n--- system log tail ---\n{tail}")
        return True
