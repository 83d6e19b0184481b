"""The notifier's mailer against real SMTP servers (aiosmtpd on free ports): one connection kept
across messages, reopened when it drops, and refusals told apart from outages."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from services.dev.ports import free_port
from services.notifier.mailer import Mailer, PermanentFailure, TemporaryFailure, compose
from services.notifier.rendering import RenderedEmail


class Recorder:
    """An SMTP handler that keeps what it receives, counts sessions, and refuses recipients
    whose address starts with ``reject`` (550) or ``busy`` (450)."""

    def __init__(self) -> None:
        self.sessions = 0
        self.received: list[bytes] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001, ANN201, N802
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: ANN001, ANN201, N802
        if address.startswith("reject"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.received.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = Recorder()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=port)
        self.running = False

    def start(self) -> Server:
        self._controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._controller.stop()
            self.running = False


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server(free_port()).start()
    yield running
    running.stop()


@pytest.fixture
def mailer(server: Server) -> Iterator[Mailer]:
    mailer = Mailer(host="127.0.0.1", port=server.port, timeout=5)
    yield mailer
    mailer.close()


def message(to: str = "intake@ruiz.example", notification_id: str = "n-1") -> EmailMessage:
    rendered = RenderedEmail(subject="New urgent referral — ref HX-1", text="text\n", html="<p>html</p>\n")
    return compose(rendered=rendered, to=to, notification_id=notification_id, mail_from="handoff@localhost")


def test_one_connection_carries_many_messages(server: Server, mailer: Mailer) -> None:
    mailer.send(message(notification_id="n-1"))
    mailer.send(message(notification_id="n-2"))

    assert len(server.handler.received) == 2
    assert server.handler.sessions == 1


def test_a_dropped_connection_is_reopened(server: Server, mailer: Mailer) -> None:
    mailer.send(message(notification_id="n-1"))
    server.stop()  # closes the mailer's open connection from the server's side
    restarted = Server(server.port).start()
    try:
        mailer.send(message(notification_id="n-2"))
    finally:
        restarted.stop()

    assert len(restarted.handler.received) == 1
    assert b"Message-ID: <n-2@handoff.local>" in restarted.handler.received[0]


def test_no_server_is_a_temporary_failure() -> None:
    mailer = Mailer(host="127.0.0.1", port=free_port(), timeout=5)

    with pytest.raises(TemporaryFailure, match="refused the connection"):
        mailer.send(message())


def test_a_refused_recipient_is_permanent_and_the_connection_stays_usable(server: Server, mailer: Mailer) -> None:
    with pytest.raises(PermanentFailure, match="550 5.1.1 no such mailbox"):
        mailer.send(message(to="reject@ruiz.example"))
    mailer.send(message(to="intake@ruiz.example"))

    assert len(server.handler.received) == 1
    assert server.handler.sessions == 1


def test_a_busy_mailbox_is_temporary(server: Server, mailer: Mailer) -> None:
    with pytest.raises(TemporaryFailure, match="450 4.2.1 mailbox busy"):
        mailer.send(message(to="busy@ruiz.example"))

    assert server.handler.received == []
