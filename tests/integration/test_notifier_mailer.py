"""The notifier's mailer against real SMTP servers (aiosmtpd on free ports): one connection kept
across messages, reopened when it drops, refusals told apart from outages, and what real
providers need: STARTTLS, implicit TLS, AUTH, certificate checks and timeouts."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.dev.ports import free_port
from services.notifier.mailer import Mailer, PermanentFailure, TemporaryFailure, compose
from services.notifier.rendering import RenderedEmail
from tests.support.ci import skip_or_fail
from tests.support.smtp import Recorder
from tests.support.smtp import RecordingServer as Server


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
    with pytest.raises(PermanentFailure, match=r"550 5\.1\.1 no such mailbox"):
        mailer.send(message(to="reject@ruiz.example"))
    mailer.send(message(to="intake@ruiz.example"))

    assert len(server.handler.received) == 1
    assert server.handler.sessions == 1


def test_a_busy_mailbox_is_temporary(server: Server, mailer: Mailer) -> None:
    with pytest.raises(TemporaryFailure, match=r"450 4\.2\.1 mailbox busy"):
        mailer.send(message(to="busy@ruiz.example"))

    assert server.handler.received == []


# --- Real providers: STARTTLS, implicit TLS, AUTH and timeouts ------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made by the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        skip_or_fail("the openssl command is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"clinic", b"s3cret")
    # handled=False: aiosmtpd answers (235 or 535) itself.
    return AuthResult(success=ok, handled=False)


class SecureServer:
    """A real aiosmtpd server that insists on STARTTLS and AUTH, or speaks implicit TLS."""

    def __init__(self, certificate: tuple[Path, Path], *, implicit_tls: bool) -> None:
        self.port = free_port()
        self.handler = Recorder()
        context = server_context(certificate)
        if implicit_tls:
            # aiosmtpd only counts STARTTLS as TLS when it decides whether to offer AUTH.
            options: dict = {"ssl_context": context, "server_hostname": "localhost", "auth_require_tls": False}
        else:
            options = {"tls_context": context, "require_starttls": True}
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            auth_required=True,
            authenticator=authenticator,
            **options,
        )

    def __enter__(self) -> SecureServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def secure_mailer(port: int, certificate: tuple[Path, Path], **changes: object) -> Mailer:
    options: dict = {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": "clinic",
        "password": "s3cret",
        "timeout": 5,
        "ca_file": str(certificate[0]),
    }
    return Mailer(**{**options, **changes})


def test_starttls_and_login_deliver(certificate: tuple[Path, Path]) -> None:
    with SecureServer(certificate, implicit_tls=False) as server:
        mailer = secure_mailer(server.port, certificate)
        try:
            mailer.send(message(notification_id="n-1"))
            mailer.send(message(notification_id="n-2"))
        finally:
            mailer.close()

    assert len(server.handler.received) == 2
    assert server.handler.sessions == 2  # EHLO before and after STARTTLS, on one connection


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_and_login_deliver(certificate: tuple[Path, Path]) -> None:
    with SecureServer(certificate, implicit_tls=True) as server:
        mailer = secure_mailer(server.port, certificate, security="tls")
        try:
            mailer.send(message())
        finally:
            mailer.close()

    assert len(server.handler.received) == 1


def test_a_wrong_password_is_temporary_and_names_no_secret(certificate: tuple[Path, Path]) -> None:
    with SecureServer(certificate, implicit_tls=False) as server:
        mailer = secure_mailer(server.port, certificate, password="wrong-pass")
        with pytest.raises(TemporaryFailure, match="SMTP login refused") as raised:
            mailer.send(message())

    assert "wrong-pass" not in str(raised.value)
    assert server.handler.received == []


def test_a_server_that_requires_starttls_refuses_plain_text(certificate: tuple[Path, Path]) -> None:
    with SecureServer(certificate, implicit_tls=False) as server:
        mailer = secure_mailer(server.port, certificate, security="none")
        with pytest.raises(TemporaryFailure):
            mailer.send(message())

    assert server.handler.received == []


def test_an_untrusted_certificate_gets_neither_password_nor_mail(certificate: tuple[Path, Path]) -> None:
    with SecureServer(certificate, implicit_tls=False) as server:
        mailer = secure_mailer(server.port, certificate, ca_file="")  # the system's CAs only
        with pytest.raises(TemporaryFailure, match="CERTIFICATE_VERIFY_FAILED"):
            mailer.send(message())

    assert server.handler.received == []


def test_a_server_that_never_answers_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, then says nothing
        mailer = Mailer(host="127.0.0.1", port=silent.getsockname()[1], timeout=0.5)
        with pytest.raises(TemporaryFailure, match="did not answer in time"):
            mailer.send(message())
