"""A local SMTP server that accepts every message and writes it as an ``.eml`` file.

Used by ``handoff dev`` (files under ``$HANDOFF_DATA_DIR/mail/``) and by the tests as the real
SMTP server the notifier talks to.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.dev.ports import free_port


class _WriteEml:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        temporary = self.directory / f".{name}.tmp"
        content = envelope.original_content or envelope.content or b""
        temporary.write_bytes(content.encode() if isinstance(content, str) else content)
        # Rename so a reader never sees half a message.
        os.replace(temporary, self.directory / name)
        return "250 Message accepted for delivery"


class MailCatcher:
    """An SMTP server on ``host:port`` writing each accepted message into ``directory``."""

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port or free_port()
        self._controller: Controller | None = None

    def start(self) -> MailCatcher:
        self.directory.mkdir(parents=True, exist_ok=True)
        # aiosmtpd logs every line of every message at DEBUG, and messages carry partners' signed
        # links: at most INFO here, whatever the process's log level.
        smtp_log = logging.getLogger("mail.log")
        smtp_log.setLevel(max(logging.INFO, smtp_log.getEffectiveLevel()))
        self._controller = Controller(_WriteEml(self.directory), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        """Every message caught so far, oldest first."""
        return read_mailbox(self.directory)

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_mailbox(directory: Path) -> list[EmailMessage]:
    paths = sorted(Path(directory).glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]
