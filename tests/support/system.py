"""The whole system as real processes, started by ``handoff dev`` on free ports (a private
Redis, the SMTP catcher, both web services and both workers), driven through the Contract's HTTP
API and CLI only."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from services.dev.ports import free_port
from tests.support.polling import eventually

PASSWORD = "walking skeleton 2026"
REPO = Path(__file__).resolve().parents[2]


class System:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.directory_port, self.referrals_port, smtp_port = free_port(), free_port(), free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")},
            "HANDOFF_DATA_DIR": str(data_dir),
            "HANDOFF_DIRECTORY_PORT": str(self.directory_port),
            "HANDOFF_REFERRALS_PORT": str(self.referrals_port),
            "HANDOFF_SMTP_PORT": str(smtp_port),
            "HANDOFF_RELAY_INTERVAL_SECONDS": "0.2",
        }
        self.process: subprocess.Popen | None = None
        self.directory = httpx.Client(base_url=f"http://127.0.0.1:{self.directory_port}", timeout=10)
        self.referrals = httpx.Client(base_url=f"http://127.0.0.1:{self.referrals_port}", timeout=10)

    def handoff(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            input=stdin,
            text=True,
            capture_output=True,
            env=self.env,
            cwd=REPO,
            timeout=60,
        )

    def start(self) -> None:
        # A file, not a pipe: nobody reads a pipe until stop(), and a chatty run (DEBUG) would
        # fill it and block every process writing to it.
        self.output = self.data_dir.parent / "handoff-dev.out"
        with self.output.open("w") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "dev"],
                env=self.env,
                cwd=REPO,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"handoff dev exited early:\n{self.output.read_text()}")
            try:
                return all(c.get("/health").status_code == 200 for c in (self.directory, self.referrals))
            except httpx.TransportError:
                return False

        eventually(healthy, timeout=90, what="both services' /health")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        return code, self.output.read_text()

    def mail(self) -> list[email.message.EmailMessage]:
        paths = sorted((self.data_dir / "mail").glob("*.eml"))
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def token(system: System, email_address: str) -> dict[str, str]:
    response = system.referrals.post("/api/v1/auth/token", json={"email": email_address, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def body_text(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()
