"""The production topology without Docker: PostgreSQL, a Redis of the test's own, two directory and
two referrals replicas (``handoff serve``) behind Caddy running deploy/Caddyfile (one origin,
routes by path), one referrals worker and two notifiers, an SMTP server and an OTLP receiver in
this process. Checked through the proxy:

- each client keeps its own rate-limit bucket though every request reaches the replicas from
  the proxy (and a client cannot buy a new one with its own X-Forwarded-For);
- /metrics is refused at the edge;
- one referral posted through the proxy is one trace, from the POST on a referrals replica
  through the outbox and RQ to the SMTP send of a notifier, exported by each process over OTLP."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from services.dev import processes
from services.dev.mail_catcher import MailCatcher
from services.dev.ports import free_port, wait_for_port
from services.dev.redis_server import RedisServer
from tests.support.ci import skip_or_fail
from tests.support.databases import POSTGRES_URL, postgres_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "replicas drill 2026"
SEARCH_LIMIT = 6  # anonymous searches per minute per client
START_LIMIT_SECONDS = 90


@dataclass
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class OtlpReceiver:
    """An OTLP/HTTP trace endpoint (``/v1/traces``, protobuf) keeping every span it receives."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.port = free_port()
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        received.extend(
                            Span(
                                service=attributes.get("service.name", ""),
                                name=span.name,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                            )
                            for span in scope.spans
                        )
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], object], *, what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {limit:.0f} s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Topology:
    origin: str  # the proxy: the one public origin
    replicas: dict[str, list[str]]  # service -> each replica's own URL (the internal network)
    mail: MailCatcher
    traces: OtlpReceiver
    env: dict[str, str]
    log: Path

    def client(self, address: str) -> httpx.Client:
        """A client connecting to the proxy from ``address`` (a loopback address of its own)."""
        return httpx.Client(base_url=self.origin, timeout=30, transport=httpx.HTTPTransport(local_address=address))

    def cli(self, *args: str, stdin: str = "") -> None:
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            input=stdin,
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    caddy = shutil.which("caddy")
    if caddy is None:
        skip_or_fail("caddy is not installed (Debian package `caddy`; .ci/run installs it)")
    if not POSTGRES_URL:
        skip_or_fail("HANDOFF_TEST_POSTGRES_URL is not set: the topology runs on PostgreSQL")
    root = tmp_path_factory.mktemp("replicas")
    with contextlib.ExitStack() as stack:
        directory_db = stack.enter_context(contextlib.contextmanager(postgres_database)())
        referrals_db = stack.enter_context(contextlib.contextmanager(postgres_database)())
        redis = stack.enter_context(RedisServer(root / "redis"))
        mail = stack.enter_context(MailCatcher(root / "mail"))
        traces = stack.enter_context(OtlpReceiver())
        proxy_port = free_port()
        origin = f"http://127.0.0.1:{proxy_port}"
        ports = {"directory": [free_port(), free_port()], "referrals": [free_port(), free_port()]}
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HANDOFF_", "OTEL_"))},
            "HANDOFF_DATA_DIR": str(root),
            "HANDOFF_REDIS_URL": redis.url,
            "HANDOFF_DIRECTORY_DB_URL": directory_db,
            "HANDOFF_REFERRALS_DB_URL": referrals_db,
            "HANDOFF_DB_POOL_SIZE": "2",
            "HANDOFF_DB_MAX_OVERFLOW": "2",
            "HANDOFF_SECRET_KEY": uuid.uuid4().hex * 2,
            "HANDOFF_SMTP_PORT": str(mail.port),
            "HANDOFF_DIRECTORY_URL": origin,
            "HANDOFF_REFERRALS_URL": origin,
            "HANDOFF_SEARCH_RATE_LIMIT": str(SEARCH_LIMIT),
            "HANDOFF_TRUSTED_PROXIES": "127.0.0.1",  # the proxy's address, as compose gives its network
            "HANDOFF_RELAY_INTERVAL_SECONDS": "0.2",
            "HANDOFF_LOG_FORMAT": "json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{traces.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        log = root / "system.log"
        topology = Topology(origin=origin, replicas={}, mail=mail, traces=traces, env=env, log=log)
        topology.cli("db", "upgrade")
        topology.cli("user", "add", "--email", "admin@clinic.example", "--role", "admin", stdin=PASSWORD + "\n")
        commands = [["serve", service, "--port", str(port)] for service, pair in ports.items() for port in pair]
        commands += [["worker", "referrals"], ["worker", "notifier"], ["worker", "notifier"]]
        children = []
        with log.open("ab") as out:
            for argv in commands:
                children.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.cli", *argv],
                        env=env,
                        cwd=ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        preexec_fn=processes.die_with_parent,
                    )
                )
            children.append(
                subprocess.Popen(
                    [caddy, "run", "--adapter", "caddyfile", "--config", str(ROOT / "deploy" / "Caddyfile")],
                    env={
                        "PATH": os.environ["PATH"],
                        "HOME": str(root),
                        "XDG_DATA_HOME": str(root / "caddy"),
                        "XDG_CONFIG_HOME": str(root / "caddy"),
                        "PUBLIC_HOST": origin,
                        "UPSTREAMS": "static",
                        "DIRECTORY_UPSTREAMS": " ".join(f"127.0.0.1:{p}" for p in ports["directory"]),
                        "REFERRALS_UPSTREAMS": " ".join(f"127.0.0.1:{p}" for p in ports["referrals"]),
                    },
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=processes.die_with_parent,
                )
            )
        try:
            topology.replicas = {s: [f"http://127.0.0.1:{p}" for p in pair] for s, pair in ports.items()}
            for url in [u for pair in topology.replicas.values() for u in pair]:
                wait_for(lambda url=url: answers(f"{url}/ready"), what=f"{url}/ready", limit=START_LIMIT_SECONDS)
            wait_for_port(proxy_port, timeout=30)
            yield topology
        except BaseException:
            print(log.read_text(errors="replace")[-6000:], file=sys.stderr)
            raise
        finally:
            for child in children:
                processes.stop(child, timeout=20)


def request_counts(url: str) -> float:
    """The requests a replica counted itself (its own /metrics, on the internal network)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "handoff_requests_total"
    )


def test_each_client_keeps_its_own_rate_limit_through_the_proxy(topology: Topology) -> None:
    with topology.client("127.0.0.2") as first, topology.client("127.0.0.3") as second:
        statuses = [first.get("/api/v1/partners", params={"q": f"x{i}"}).status_code for i in range(SEARCH_LIMIT)]
        assert statuses == [200] * SEARCH_LIMIT
        refused = first.get("/api/v1/partners", params={"q": "one more"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        # A header of its own does not make it someone else: the proxy sets X-Forwarded-For.
        spoofed = first.get("/api/v1/partners", params={"q": "spoof"}, headers={"X-Forwarded-For": "10.9.9.9"})
        assert spoofed.status_code == 429
        assert second.get("/api/v1/partners", params={"q": "other client"}).status_code == 200
        assert first.get("/metrics").status_code == 404, "the edge never serves metrics"
        assert first.get("/ready").headers.get("strict-transport-security", "").startswith("max-age=")
    # The limit held although the requests were shared by both directory replicas.
    assert all(request_counts(url) > 0 for url in topology.replicas["directory"])


def test_one_referral_is_one_trace_from_the_post_to_the_smtp_send(topology: Topology) -> None:
    with topology.client("127.0.0.4") as client:
        token = client.post("/api/v1/auth/token", json={"email": "admin@clinic.example", "password": PASSWORD})
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        partner = client.post(
            "/api/v1/partners",
            headers=headers,
            json={
                "name": "Edge Physio",
                "category": "physical_therapy",
                "email": "edge@partners.example",
                "accepting_new_clients": "yes",
            },
        )
        assert partner.status_code == 201, partner.text
        partner_id = partner.json()["id"]

        def replicated() -> bool:
            answer = client.post(
                "/api/v1/referrals/suggestions",
                headers=headers,
                json={"reasons": ["rehab_exercise_needed"], "limit": 50},
            )
            return answer.status_code == 200 and partner_id in {s["partner_id"] for s in answer.json()}

        wait_for(replicated, what="the partner in the referrals replica")
        posted = client.post(
            "/api/v1/referrals",
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            json={
                "client": {"name": "Edge client", "phone": "727-555-0142"},
                "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
                "reasons": ["rehab_exercise_needed"],
                "partner_ids": [partner_id],
            },
        )
        assert posted.status_code == 201, posted.text
        request_id = posted.headers["x-request-id"]
    reference = posted.json()["reference"]
    wait_for(lambda: any(reference in str(m["Subject"]) for m in topology.mail.messages()), what="the offer email")

    def trace_of_the_send() -> list[Span] | None:
        spans = list(topology.traces.spans)
        by_id = {span.span_id: span for span in spans}
        for send in (s for s in spans if s.name == "smtp send"):
            chain = [send]
            while chain[-1].parent_id in by_id:
                chain.append(by_id[chain[-1].parent_id])
            if chain[-1].name == "POST /api/v1/referrals":
                return chain
        return None

    wait_for(trace_of_the_send, what="the POST's trace to reach the SMTP send")
    chain = trace_of_the_send()
    assert [span.name for span in chain[:3]] == [
        "smtp send",
        "rq services.notifier.jobs.handle",
        "outbox relay notifications",
    ]
    assert len({span.trace_id for span in chain}) == 1
    services = {span.service for span in chain}
    assert {"handoff-notifier-worker", "handoff-referrals"} <= services, services
    assert len(request_id) >= 8
