"""Observability of one referrals web process and one notifier, on a real database, Redis and SMTP
server, with the real OpenTelemetry SDK (in-memory exporter) and Prometheus's own text parser:
request ids and a redacting access log, one trace from the POST through the outbox and the RQ
job to the SMTP send, and the operational metrics at /metrics."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from services.dev.mail_catcher import MailCatcher
from services.notifier import bootstrap as notifier_bootstrap
from services.notifier import jobs as notifier_jobs
from services.referrals import bootstrap, identity, jobs
from services.referrals.storage import MIGRATIONS, outbox
from services.referrals.web.app import create_app
from shared import codec, database, logs, ops_metrics, queues
from shared import outbox as outbox_module
from shared import worker as rq_worker
from shared.config import load_settings
from shared.messages import Address, EmailContext, PartnerChanged, PartnerSnapshot, SendEmail

PASSWORD = "observability 2026"
CONSENT = {"given": True, "method": "verbal", "scope": ["clinical"]}
ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "alerts.yml"
METRICS_TOKEN = "prometheus-scrape-token-0123456789"
TOKEN = "tok3n-that-must-never-be-logged.abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, mail_catcher: MailCatcher):
    settings = load_settings(
        {},
        data_dir=str(tmp_path),
        redis_url=redis_url,
        smtp_port=mail_catcher.port,
        secret_key="observability-key-" + "k" * 40,
        relay_interval_seconds=3600,  # the test flushes the outbox itself
        metrics_token=METRICS_TOKEN,
    )
    database.upgrade(migrations=MIGRATIONS, url=settings.db_url("referrals"))

    async def staff() -> None:
        engine = database.create_engine(settings.db_url("referrals"))
        await identity.add_user(
            database.sessions(engine), email="tess@clinic.example", role="therapist", password=PASSWORD
        )
        await engine.dispose()

    asyncio.run(staff())
    snapshot = PartnerSnapshot(
        id="pt1",
        slug="pt1",
        name="Bay Physio",
        category="physical_therapy",
        email="pt1@partners.example",
        status="active",
        address=Address(city="St. Petersburg", state="FL", postal_code="33701"),
    )
    jobs.runtime.install(bootstrap.build(settings, use="worker"))
    jobs.handle(codec.encode(PartnerChanged(partner=snapshot, version=1, changed_at=datetime.now(UTC))))
    jobs.runtime.uninstall()
    return settings


def post_referral(client: TestClient) -> str:
    token = client.post("/api/v1/auth/token", json={"email": "tess@clinic.example", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}", "X-Request-ID": "edge-req-0001"}
    body = {
        "client": {"name": "Trace client", "phone": "727-555-0142"},
        "consent": CONSENT,
        "reasons": ["rehab_exercise_needed"],
    }
    answer = client.post("/api/v1/referrals", json={**body, "partner_ids": ["pt1"]}, headers=headers)
    assert answer.status_code == 201, answer.text
    assert answer.headers["x-request-id"] == "edge-req-0001", "the proxy's id is kept and echoed"
    return answer.json()["id"]


def stage_elsewhere(settings) -> None:
    """An email staged by another process (a worker, say): no relay of this app holds it, so it
    waits in the outbox until the relay's next flush, and the backlog metrics show it."""

    async def stage() -> None:
        engine = database.create_engine(settings.db_url("referrals"))
        try:
            async with database.sessions(engine).begin() as session:
                context = EmailContext(reference="HX-TEST0001", urgency="routine")
                message = SendEmail(
                    notification_id="elsewhere-1", kind="offer_reminder", to="p@x.example", context=context
                )
                await outbox_module.add(session, outbox, message, message_id="elsewhere-1")
        finally:
            await engine.dispose()

    asyncio.run(stage())


def flush(client: TestClient) -> None:
    with client.portal() as portal:
        portal.call(client.app.state.runtime.relay.flush)


def test_one_trace_spans_the_post_the_outbox_the_job_and_the_smtp_send(
    settings, trace_spans, mail_catcher: MailCatcher
) -> None:
    trace_spans.clear()
    with TestClient(create_app(settings)) as client:
        post_referral(client)
        flush(client)
    notifier_jobs.runtime.install(notifier_bootstrap.build(settings))
    try:
        rq_worker.build(queues.NOTIFICATIONS, settings.redis_url).work(burst=True)
    finally:
        notifier_jobs.runtime.uninstall()
    assert len(mail_catcher.messages()) == 1

    spans = trace_spans.get_finished_spans()
    ids = {span.context.span_id: span for span in spans}

    def parent(span):
        return ids.get(span.parent.span_id) if span.parent is not None else None

    [smtp] = [span for span in spans if span.name == "smtp send"]
    job = parent(smtp)
    relay = parent(job)
    assert job.name == "rq services.notifier.jobs.handle" and relay.name == "outbox relay notifications"
    ancestor = relay
    while parent(ancestor) is not None:
        ancestor = parent(ancestor)
    assert ancestor.name == "POST /api/v1/referrals", "one trace, from the request that staged the email"
    assert {span.context.trace_id for span in (smtp, job, relay)} == {ancestor.context.trace_id}
    post = ancestor
    assert any(span.name.startswith(("SELECT", "INSERT", "BEGIN")) or "sqlite" in span.name for span in spans), (
        "SQLAlchemy is traced"
    )
    assert any(span.attributes.get("db.system") == "redis" for span in spans), "Redis is traced"
    assert post.attributes.get("handoff.request_id") == "edge-req-0001"


def test_logs_and_spans_name_routes_never_tokens(settings, trace_spans, caplog: pytest.LogCaptureFixture) -> None:
    trace_spans.clear()
    caplog.set_level(logging.DEBUG)  # every logger, every level: nothing the service logs may hold it
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/respond/{TOKEN}?reason=private")
        generated = answer.headers["x-request-id"]
        forged = client.get("/health", headers={"X-Request-ID": "bad id\nforged line"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated), "a new id when the request came with none"
    assert forged.headers["x-request-id"] != "bad id\nforged line"
    [line] = [r for r in caplog.records if r.name == "handoff.access" and r.levelno == logging.INFO]
    assert line.fields["route"].startswith("/respond/{") and line.fields["status"] == answer.status_code
    # Everything the service logged (the test's own HTTP client, httpx, logs the URL it asked for).
    served = [record for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))]
    rendered = [logs.JsonFormatter().format(record) for record in served]
    assert not any(TOKEN in text or "private" in text for text in rendered)
    for span in trace_spans.get_finished_spans():
        values = [span.name, *map(str, span.attributes.values())]
        assert not any(TOKEN in value or "private" in value for value in values), span.name


def test_metrics_show_the_backlog_the_queues_and_the_emails(settings) -> None:
    def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
        assert client.get("/metrics").status_code == 403, "for the monitoring system only"
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert answer.status_code == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }

    with TestClient(create_app(settings)) as client:
        post_referral(client)  # its offer email is handed to the app's relay at the commit
        stage_elsewhere(settings)  # this one waits in the outbox for the relay's flush
        before = scrape(client)
        assert before[("handoff_outbox_unsent", (("service", "referrals"),))] >= 1
        assert before[("handoff_outbox_oldest_unsent_seconds", (("service", "referrals"),))] >= 0
        flush(client)
        redis = Redis.from_url(settings.redis_url)
        ops_metrics.count_email(redis, "sent")
        ops_metrics.count_email(redis, "retried")
        ops_metrics.sweep_finished(redis)
        after = scrape(client)
    assert after[("handoff_outbox_unsent", (("service", "referrals"),))] == 0
    assert after[("handoff_queue_jobs", (("queue", "notifications"), ("state", "queued")))] == 2
    assert after[("handoff_queue_jobs", (("queue", "referrals"), ("state", "failed")))] == 0
    assert after[("handoff_emails_total", (("outcome", "sent"),))] == 1
    assert after[("handoff_emails_total", (("outcome", "retried"),))] == 1
    assert after[("handoff_emails_total", (("outcome", "failed"),))] == 0
    assert 0 <= after[("handoff_sweep_lag_seconds", ())] < 60
    assert after[("handoff_sweep_interval_seconds", ())] == settings.sweep_interval_seconds
    assert after[("handoff_redis_used_memory_bytes", ())] > 0
    assert ("handoff_workers", (("queue", "notifications"),)) in after

    # Every metric the alert rules read is one these scrapes serve.
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"\bhandoff_\w+", rule["expr"])}
    served = {name for name, _ in after}
    assert used and sorted(used - served) == []
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"], rule
