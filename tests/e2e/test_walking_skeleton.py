"""The walking skeleton, end to end over real processes started by ``handoff dev``: a private
Redis, the SMTP catcher, both web services and both workers, on free ports. Driven only through
the Contract's HTTP API and CLI."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from services.dev.ports import free_port
from tests.e2e.polling import eventually

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


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    system = System(tmp_path / "data")
    system.start()
    try:
        yield system
    finally:
        if system.process.poll() is None:
            system.process.kill()
            system.process.wait()


def token(system: System, email_address: str) -> dict[str, str]:
    response = system.referrals.post("/api/v1/auth/token", json={"email": email_address, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def body_text(message: email.message.EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_a_referral_travels_through_all_three_services(system: System) -> None:
    children = psutil.Process(system.process.pid).children(recursive=True)
    assert len(children) >= 5  # redis, two web services, two workers

    for address, role in (("admin@clinic.example", "admin"), ("tess@clinic.example", "therapist")):
        added = system.handoff("user", "add", "--email", address, "--role", role, stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    admin, therapist = token(system, "admin@clinic.example"), token(system, "tess@clinic.example")

    # Ready means the database and Redis both answer.
    assert system.directory.get("/ready").status_code == 200
    assert system.referrals.get("/ready").status_code == 200

    # An admin creates a partner in directory; a therapist may not.
    partner_in = {
        "name": "Dr. Rosa Delgado",
        "category": "primary_care",
        "email": "rosa@bayside-family.example",
        "accepting_new_clients": "yes",
    }
    assert system.directory.post("/api/v1/partners", json=partner_in).status_code == 401
    assert system.directory.post("/api/v1/partners", json=partner_in, headers=therapist).status_code == 403
    created = system.directory.post("/api/v1/partners", json=partner_in, headers=admin)
    assert created.status_code == 201, created.text
    partner = created.json()
    assert partner["status"] == "active" and partner["version"] >= 1

    # PartnerChanged reaches the referrals replica.
    def suggested() -> bool:
        response = system.referrals.post(
            "/api/v1/referrals/suggestions", headers=therapist, json={"reasons": ["calf_swelling_one_side"]}
        )
        return response.status_code == 200 and partner["id"] in [s["partner_id"] for s in response.json()]

    eventually(suggested, what="the partner in the referrals replica")

    # Consent is required; then the referral is issued.
    referral_in = {
        "client": {"name": "Wilhelmina Sentinel-Client"},
        "reasons": ["calf_swelling_one_side"],
        "note": "Left calf warm and swollen since Tuesday.",
        "partner_ids": [partner["id"]],
    }
    refused = system.referrals.post("/api/v1/referrals", json=referral_in, headers=therapist)
    assert refused.status_code == 400 and "consent" in refused.text
    referral_in["consent"] = {"given": True, "method": "verbal", "scope": ["clinical"]}
    issued = system.referrals.post("/api/v1/referrals", json=referral_in, headers=therapist)
    assert issued.status_code == 201, issued.text
    referral = issued.json()
    assert referral["status"] == "requested" and referral["urgency"] == "urgent"

    # The notifier emails the partner a /respond/{token} link, with no client data.
    offer = eventually(
        lambda: next((m for m in system.mail() if m["To"] == partner_in["email"]), None),
        what="the offer email in the SMTP catcher",
    )
    text = body_text(offer)
    for private in ("Wilhelmina", "Sentinel-Client", "calf", "swollen"):
        assert private not in offer.as_string()
    link = re.search(r"https?://\S+/respond/\S+", text).group(0)
    path = "/respond/" + link.split("/respond/", 1)[1]

    # The partner page opens (GET changes nothing) and its accept form accepts.
    page = system.referrals.get(path)
    assert page.status_code == 200 and 'name="decision"' in page.text
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    still = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()
    assert still["status"] == "requested"
    answered = system.referrals.post(path, data={"decision": "accept", "_csrf_token": csrf})
    assert answered.status_code == 200, answered.text
    detail = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()
    assert detail["status"] == "accepted"
    assert system.referrals.post(path, data={"decision": "accept", "_csrf_token": csrf}).status_code == 410

    # The therapist hears of it, and the delivery reports come back onto the timeline.
    eventually(
        lambda: any(m["To"] == "tess@clinic.example" for m in system.mail()),
        what="the acceptance email to the therapist",
    )

    def reported() -> bool:
        timeline = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()["timeline"]
        return any(e["actor"] == "notifier" and "sent" in e["why"] for e in timeline)

    eventually(reported, what="the notifier's delivery report on the timeline")

    # Ctrl-C stops everything handoff dev started.
    code, output = system.stop()
    assert code == 0, output
    assert "Partners in Health" in output and "/respond" not in output
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
