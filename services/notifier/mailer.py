"""Email over SMTP: composing the MIME message, one connection per worker process (reopened when
it drops), and every failure classified as temporary (try again later) or permanent (this message
will never go).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Literal, NamedTuple

from services.notifier.rendering import RenderedEmail
from shared.config import Settings
from shared.emails import InvalidEmail, normalised_email

DETAIL_LIMIT = 200
_MESSAGE_ID_LOCAL = re.compile(r"[A-Za-z0-9._-]{1,64}")


class SendFailure(Exception):
    """The SMTP server did not accept the message. ``str()`` is a short reason fit for a
    delivery report: a code and the server's words, never a credential."""


class TemporaryFailure(SendFailure):
    """Worth trying again later: the server is unreachable, busy (4xx) or misconfigured."""


class PermanentFailure(SendFailure):
    """The server refused this very message (5xx), or it can never be addressed: do not retry."""


class OutgoingEmail(NamedTuple):
    """One message as it goes on the wire: envelope sender and recipient, and the bytes (CRLF
    line ends, ASCII only)."""

    sender: str
    recipient: str
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message as a mail client would read it (line ends as LF)."""
        lf = self.data.replace(b"\r\n", b"\n")
        return message_from_bytes(lf, policy=policy.default)


def compose(
    *, rendered: RenderedEmail, to: str, notification_id: str, mail_from: str, reply_to: str = ""
) -> OutgoingEmail:
    """The multipart (plain text + HTML) message for one notification.

    Written out directly rather than through ``email.message.EmailMessage``, whose header
    parsing took more time per email than the SMTP conversation (see tests/bench). The stdlib
    still does the encoding: ``formataddr`` for addresses, ``base64`` for the subject's encoded
    words and ``binascii`` quoted-printable for the bodies; the tests read the result back with the
    stdlib parser.
    """
    recipient = _recipient(to)
    sender = _address(mail_from, what="HANDOFF_MAIL_FROM")
    boundary = f"=_handoff_{hashlib.sha256(notification_id.encode()).hexdigest()[:24]}"
    headers = [
        ("From", sender.header),
        ("To", recipient.header),
        *([("Reply-To", _address(reply_to, what="HANDOFF_MAIL_REPLY_TO").header)] if reply_to else []),
        ("Subject", _subject(rendered.subject)),
        ("Date", format_datetime(datetime.now(UTC))),
        ("Message-ID", message_id(notification_id, mail_from=mail_from)),
        # RFC 3834: out-of-office responders should not answer a machine.
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    lines = [f"{name}: {value}" for name, value in headers]
    lines.append("")
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        lines += [
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: quoted-printable",
            "",
            _quoted_printable(body),
        ]
    lines += [f"--{boundary}--", ""]
    return OutgoingEmail(sender=sender.address, recipient=recipient.address, data="\r\n".join(lines).encode("ascii"))


class _Address(NamedTuple):
    address: str
    header: str


# Parsing and checking an address cost a third of composing a message; the same few partners and
# staff get most emails, and the sender is always the same. Pure functions of their text, so
# kept (a refused address raises and is not kept).
@functools.lru_cache(maxsize=4096)
def _recipient(to: str) -> _Address:
    recipient = _address(to, what="the recipient")
    try:
        # Checked as every service checks the addresses it stores (a partner's, a staff member's).
        normalised_email(recipient.address)
    except InvalidEmail as exc:
        raise PermanentFailure(f"the recipient is not an email address: {exc}") from None
    return recipient


@functools.lru_cache(maxsize=64)
def _address(value: str, *, what: str) -> _Address:
    # A line break would smuggle in another header; a second address another recipient.
    name, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    # parseaddr skips what it cannot read: whatever is left over must be the display name.
    whole = value.strip() in (address, f"<{address}>") or value.strip().endswith(f"<{address}>")
    broken = "\r" in value or "\n" in value or "," in value.replace(name, "", 1)
    if broken or not whole or not at or not local or not domain:
        raise PermanentFailure(f"{what} is not an email address")
    try:
        domain = domain.encode("idna").decode("ascii")
        local.encode("ascii")
    except UnicodeError:
        raise PermanentFailure(f"{what} has non-ASCII characters the notifier cannot send to") from None
    address = f"{local}@{domain}"
    return _Address(address, formataddr((name, address), charset="utf-8"))


# UTF-8 bytes per RFC 2047 encoded word: 40 bytes make 56 base64 characters, so "Subject: " and
# "=?utf-8?b?…?=" stay within the 78-character line RFC 5322 asks for.
_WORD_BYTES = 40


def _subject(subject: str) -> str:
    if subject.isascii() and len(subject) <= 70:
        return subject
    # RFC 2047 base64 encoded words, one per folded line, never splitting a character. Written
    # out because email.header.Header spent a fifth of a whole email's time choosing between
    # its encodings (profiled under tests/bench/bench_notifier).
    words, word = [], b""
    for char in subject:
        encoded = char.encode("utf-8")
        if len(word) + len(encoded) > _WORD_BYTES:
            words.append(word)
            word = b""
        word += encoded
    words.append(word)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _quoted_printable(text: str) -> str:
    # Every line CRLF-terminated, the last one too; the CRLF before the next boundary belongs
    # to the boundary, so the body keeps its final line end.
    crlf = "".join(f"{line}\r\n" for line in text.splitlines())
    return binascii.b2a_qp(crlf.encode("utf-8"), istext=True).decode("ascii")


def message_id(notification_id: str, *, mail_from: str) -> str:
    """The same Message-ID for every attempt at one notification, so that a receiving server
    or mail client that does see a resend can recognise it as one."""
    local = notification_id
    if not _MESSAGE_ID_LOCAL.fullmatch(local):
        local = hashlib.sha256(notification_id.encode()).hexdigest()[:32]
    return f"<{local}@{_message_id_domain(mail_from)}>"


# The sender is the same for every email: parsed once (parseaddr is most of a Message-ID's cost).
@functools.lru_cache(maxsize=16)
def _message_id_domain(mail_from: str) -> str:
    domain = parseaddr(mail_from)[1].rpartition("@")[2]
    if "." not in domain:  # "localhost" and friends say nothing about who sent it
        return "handoff.local"
    return domain


class Mailer:
    """Sends messages over one SMTP connection, opened on first use and kept for the next job.

    Not thread-safe: an RQ worker runs one job at a time.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Literal["none", "starttls", "tls"] = "none",
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
        ca_file: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ca_file = ca_file
        self._connection: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
            ca_file=settings.smtp_ca_file,
        )

    def send(self, message: OutgoingEmail) -> None:
        """Hand ``message`` to the SMTP server. Returns once the server accepted it; raises
        :class:`TemporaryFailure` or :class:`PermanentFailure` otherwise."""
        try:
            if self._connection is not None:
                try:
                    self._connection.sendmail(message.sender, [message.recipient], message.data)
                    return
                except (smtplib.SMTPServerDisconnected, ConnectionError):
                    # Servers drop idle connections between jobs; that says nothing about this
                    # message, so reopen once before calling it a failure.
                    self._discard()
            self._open().sendmail(message.sender, [message.recipient], message.data)
        except (smtplib.SMTPException, OSError) as exc:
            if not isinstance(exc, (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)):
                # After a reply smtplib has reset the session; after anything else its state is unknown.
                self._discard()
            raise classify(exc, server=f"{self.host}:{self.port}") from exc
        except BaseException:
            # E.g. the job's timeout struck mid-conversation: the session is in an unknown state.
            self._discard()
            raise

    def close(self) -> None:
        """Say goodbye to the server, if connected."""
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                pass  # It is going away either way.
            self._discard()

    def _open(self) -> smtplib.SMTP:
        # Certificates and host names are always checked: a relay that cannot prove who it is
        # does not get the password or the mail.
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.security == "tls":
            connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            connection.ehlo()
            if self.security == "starttls":
                connection.starttls(context=context)
                connection.ehlo()
            if self.username:
                connection.login(self.username, self._password)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _discard(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except OSError:
                pass  # Already broken; dropping it is all that is left to do.
            self._connection = None


def classify(exc: BaseException, *, server: str = "the SMTP server") -> SendFailure:
    """Temporary or permanent, with a short reason. Only a refusal of the message itself (a 5xx
    to MAIL, RCPT or DATA) is permanent: a 5xx while connecting or logging in is the relay's
    configuration, and retrying keeps the email until someone fixes it."""
    match exc:
        case smtplib.SMTPRecipientsRefused(recipients=refused):
            replies = list(refused.values())
            text = "; ".join(f"{code} {_text(reply)}" for code, reply in replies)
            permanent = bool(replies) and all(_is_permanent(code) for code, _ in replies)
            kind = PermanentFailure if permanent else TemporaryFailure
            return kind(_short(f"recipient refused: SMTP {text}"))
        case smtplib.SMTPAuthenticationError(smtp_code=code, smtp_error=reply):
            return TemporaryFailure(_short(f"SMTP login refused by {server}: {code} {_text(reply)}"))
        case (
            smtplib.SMTPConnectError(smtp_code=code, smtp_error=reply)
            | smtplib.SMTPHeloError(smtp_code=code, smtp_error=reply)
        ):
            return TemporaryFailure(_short(f"{server} refused the session: SMTP {code} {_text(reply)}"))
        case smtplib.SMTPResponseException(smtp_code=code, smtp_error=reply):
            kind = PermanentFailure if _is_permanent(code) else TemporaryFailure
            return kind(_short(f"SMTP {code} {_text(reply)}"))
        case smtplib.SMTPServerDisconnected() if isinstance(exc.__context__, TimeoutError):
            # smtplib reports a read that timed out as a disconnection.
            return TemporaryFailure(_short(f"{server} did not answer in time"))
        case smtplib.SMTPServerDisconnected():
            return TemporaryFailure(_short(f"{server} closed the connection"))
        case TimeoutError():
            return TemporaryFailure(_short(f"{server} did not answer in time"))
        case ConnectionRefusedError():
            return TemporaryFailure(_short(f"{server} refused the connection"))
        case _:
            return TemporaryFailure(_short(f"cannot talk to {server}: {type(exc).__name__}: {exc}"))


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _short(detail: str) -> str:
    detail = " ".join(detail.split())
    return detail if len(detail) <= DETAIL_LIMIT else detail[: DETAIL_LIMIT - 1] + "…"
