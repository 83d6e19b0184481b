"""A real SMTP server (aiosmtpd) on a free port whose handler counts what it accepts, for the
tests that break the notifier's processes (tests/integration/test_notifier_faults.py and the fault
drills)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from aiosmtpd.controller import Controller

from services.dev.ports import free_port


class Counting:
    """An SMTP handler that counts each Message-ID it accepts. With ``hold_at`` it keeps the
    reply to that message (after counting it as delivered) until ``release`` is set: the worker is
    then inside the duplicate window, between the server's acceptance and the sent-marker."""

    def __init__(self, *, hold_at: int | None = None) -> None:
        self.received: Counter[str] = Counter()
        self.hold_at = hold_at
        self.holding = threading.Event()
        self.release = threading.Event()
        self.held_id = ""

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.original_content or envelope.content
        message_id = next(
            line.split(b":", 1)[1].strip().decode()
            for line in content.splitlines()
            if line.lower().startswith(b"message-id:")
        )
        self.received[message_id] += 1
        if self.hold_at is not None and sum(self.received.values()) == self.hold_at:
            self.held_id = message_id
            self.holding.set()
            # ``release`` is a threading.Event, set from the test's thread: polled, not awaited.
            while not self.release.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, handler: Counting, port: int | None = None) -> None:
        self.handler = handler
        self.port = port or free_port()
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.handler.release.set()
        self._controller.stop()


class Recorder:
    """An SMTP handler that keeps what it receives, counts sessions, and refuses recipients
    whose address starts with ``reject`` (550) or ``busy`` (450)."""

    def __init__(self) -> None:
        self.sessions = 0
        self.received: list[bytes] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("reject"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class RecordingServer:
    """A real SMTP server on ``port`` whose :class:`Recorder` keeps every message."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = Recorder()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=port)
        self.running = False

    def start(self) -> RecordingServer:
        self._controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._controller.stop()
            self.running = False
