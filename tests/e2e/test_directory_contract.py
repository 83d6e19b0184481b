"""The directory through the Contract over real processes: ``handoff db upgrade``, ``handoff
seed --demo``, ``handoff partners import|export|republish`` and ``handoff serve directory`` on a
free port with a private Redis. Changes made by another process (the CLI) reach the running
server's cached pages too."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from services.dev.ports import free_port
from shared import categories, codec, queues
from shared.auth import Staff, issue_staff_token
from tests.support.polling import eventually

REPO = Path(__file__).resolve().parents[2]
SECRET = "directory-e2e-secret-of-at-least-32-bytes"
BAD = (
    "name,category,email,phone\n"
    "Astro,astrology,a@astro.example,\n"
    "No Mail,dietitian,not-an-email,\n"
    "Fine,dietitian,fine@diet.example,\n"
    "Bad Phone,dietitian,z@diet.example,12\n"
)


class Directory:
    def __init__(self, data_dir: Path, redis_url: str) -> None:
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")},
            "HANDOFF_DATA_DIR": str(data_dir),
            "HANDOFF_DIRECTORY_PORT": str(self.port),
            "HANDOFF_REDIS_URL": redis_url,
            "HANDOFF_SECRET_KEY": SECRET,
            "HANDOFF_LOG_LEVEL": "WARNING",
        }
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        self.process: subprocess.Popen | None = None

    def handoff(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            text=True,
            capture_output=True,
            env=self.env,
            cwd=REPO,
            timeout=120,
        )

    def serve(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "directory"],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"handoff serve directory exited:\n{self.process.stdout.read()}")
            try:
                return self.http.get("/ready").status_code == 200
            except httpx.TransportError:
                return False

        eventually(healthy, timeout=60, what="/ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.http.close()


@pytest.fixture
def directory(tmp_path: Path, redis_url: str) -> Iterator[Directory]:
    system = Directory(tmp_path / "data", redis_url)
    try:
        yield system
    finally:
        system.stop()


def admin_headers() -> dict[str, str]:
    staff = Staff(id="a1", email="admin@clinic.example", role="admin")
    return {"Authorization": f"Bearer {issue_staff_token(key=SECRET, staff=staff, ttl=timedelta(hours=1))}"}


def test_the_directory_through_its_contract(directory: Directory, tmp_path: Path, redis_url: str) -> None:
    assert directory.handoff("db", "upgrade", "directory").returncode == 0
    seeded = directory.handoff("seed", "--demo")
    assert seeded.returncode == 0, seeded.stderr
    directory.serve()

    page = directory.http.get("/partners-in-health")
    assert page.status_code == 200
    for category in categories.load().values():
        assert category.label.replace("&", "&amp;") in page.text, category.label
    tag = page.headers["etag"]

    bad = tmp_path / "bad.csv"
    bad.write_text(BAD)
    refused = directory.handoff("partners", "import", str(bad))
    assert refused.returncode == 1
    for where in ("line 2, column category", "line 3, column email", "line 5, column phone"):
        assert where in refused.stderr, refused.stderr
    assert directory.http.get("/partners-in-health", headers={"If-None-Match": tag}).status_code == 304

    good = tmp_path / "good.csv"
    good.write_text(
        "name,category,email,postal_code,languages\nZed Newcomer PT,physical_therapy,zed@pt.example,33701,Greek\n"
    )
    assert directory.handoff("partners", "import", str(good)).returncode == 0
    # Imported by another process: the server sees the new catalogue revision on its own.
    eventually(
        lambda: "Zed Newcomer PT" in directory.http.get("/partners-in-health", params={"q": "zed"}).text,
        what="the imported partner on the public page",
    )
    again = directory.handoff("partners", "import", str(good))
    assert "0 created, 0 updated, 1 unchanged" in again.stdout

    created = directory.http.post(
        "/api/v1/partners",
        headers=admin_headers(),
        json={
            "name": "Yara Quickly",
            "category": "dietitian",
            "email": "yara@diet.example",
            "address": {"line1": "1 Central Ave", "city": "St. Petersburg", "state": "FL", "postal_code": "33701"},
        },
    ).json()
    assert "Yara Quickly" in directory.http.get("/partners-in-health", params={"category": "dietitian"}).text
    found = directory.http.get("/api/v1/partners", params={"zip": "33701", "radius_km": 5, "category": "dietitian"})
    assert "Yara Quickly" in [item["name"] for item in found.json()["items"]]
    assert directory.http.post(f"/api/v1/partners/{created['id']}/archive", headers=admin_headers()).status_code == 200
    assert "Yara Quickly" not in directory.http.get("/partners-in-health", params={"category": "dietitian"}).text
    assert directory.http.get(f"/partners-in-health/{created['slug']}").status_code == 404

    exported = directory.handoff("partners", "export")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 42 and {row["status"] for row in rows} == {"active", "archived"}

    queue = queues.rq_queue(queues.REFERRALS, Redis.from_url(redis_url))
    before = set(queue.job_ids)
    assert directory.handoff("partners", "republish").returncode == 0
    # Every partner's change, in batches (PartnersChanged: one job per 500 partners).
    republished = [
        codec.decode(Job.fetch(i, connection=queue.connection, serializer=JSONSerializer).args[0])
        for i in set(queue.job_ids) - before
    ]
    assert sum(len(message.changes) for message in republished) == 42
