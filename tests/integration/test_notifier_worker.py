"""The notifier end to end within one process: SendEmail jobs on a real Redis, worked by the real
RQ worker in burst mode, sent to a real SMTP server, reported back on the referrals queue."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from redis import Connection, Redis
from rq import Retry

from services.dev.mail_catcher import MailCatcher, read_mailbox
from services.dev.ports import free_port
from services.notifier import bootstrap, worker
from services.notifier.bootstrap import Runtime
from services.notifier.jobs import deliver, runtime
from services.notifier.ledger import Ledger
from shared import codec, ops_metrics, queues
from shared.messages import EmailDelivery
from tests.support.notifier import LINK, deliveries, notifications, notifier_settings, offer, work


@pytest.fixture
def installed(redis_url: str, mail_catcher: MailCatcher, tmp_path: Path) -> Iterator[Runtime]:
    """The runtime the worker's entry point would install, aimed at the test's Redis and SMTP."""
    current = bootstrap.build(notifier_settings(redis_url, mail_catcher.port, tmp_path))
    runtime.install(current)
    yield current
    runtime.uninstall()


def exc_string(redis: Redis, job_id: str) -> str:
    return notifications(redis).fetch_job(job_id).latest_result().exc_string


def bodies(message: EmailMessage) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_an_offer_is_sent_and_reported(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    queues.enqueue(redis, offer(), job_id="n-1")

    work(redis_url)

    [message] = mail_catcher.messages()
    assert message["To"] == "Ruiz PT <intake@ruiz.example>"
    assert message["Subject"] == "New urgent referral from Sunshine Massage — ref HX-1234"
    assert message["Message-ID"] == "<n-1@handoff.local>"
    text, html = bodies(message)
    assert LINK in text and f'href="{LINK}"' in html
    [(job_id, delivery)] = deliveries(redis).items()
    assert job_id == "delivery-n-1-sent"
    assert (delivery.notification_id, delivery.outcome, delivery.referral_id) == ("n-1", "sent", "r-1")
    assert notifications(redis).finished_job_registry.get_job_ids() == ["n-1"]


def test_a_duplicated_job_sends_once(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    queues.enqueue(redis, offer(), job_id="n-1")
    queues.enqueue(redis, offer(), job_id="n-1-again")

    work(redis_url)

    assert len(mail_catcher.messages()) == 1
    assert list(deliveries(redis)) == ["delivery-n-1-sent"]
    assert sorted(notifications(redis).finished_job_registry.get_job_ids()) == ["n-1", "n-1-again"]


def test_a_retry_after_sending_only_reports_again(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    queues.enqueue(redis, offer(), job_id="n-1")
    work(redis_url)
    # The report was lost (say Redis was restored from an older copy), so the job runs again.
    queues.rq_queue(queues.REFERRALS, redis).empty()
    queues.enqueue(redis, offer(), job_id="n-1-retry")

    work(redis_url)

    assert len(mail_catcher.messages()) == 1
    [delivery] = deliveries(redis).values()
    assert delivery.outcome == "sent"


class CountedConnection(Connection):
    """A Redis connection that counts what it sends: one send per round trip (a pipeline, a
    transaction, a script: one each)."""

    sends = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        CountedConnection.sends += 1
        super().send_packed_command(command, check_health)


def test_an_email_costs_two_redis_round_trips(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, tmp_path: Path
) -> None:
    # The claim before the send; after it, the sent-marker with the report and its count, in
    # one transaction (a worker sends as fast as its round trips to Redis and the SMTP server).
    counted = Redis.from_url(redis_url, connection_class=CountedConnection, health_check_interval=0)
    built = bootstrap.build(notifier_settings(redis_url, mail_catcher.port, tmp_path))
    current = dataclasses.replace(built, redis=counted, ledger=Ledger(counted))
    try:
        deliver(offer("n-0"), runtime=current)  # the first asks Redis its version, once
        before = CountedConnection.sends

        deliver(offer("n-1"), runtime=current)

        assert CountedConnection.sends - before == 2
    finally:
        built.close()
        counted.close()
    assert len(mail_catcher.messages()) == 2
    assert set(deliveries(redis)) == {"delivery-n-0-sent", "delivery-n-1-sent"}
    assert redis.hget(ops_metrics.EMAILS_KEY, "sent") == b"2"


def test_a_notification_another_worker_is_sending_waits_for_it(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    queues.enqueue(redis, offer(), job_id="n-1-again")
    assert installed.ledger.claim("n-1")  # as if another worker were mid-way through "n-1"

    work(redis_url)

    queue = notifications(redis)
    assert queue.scheduled_job_registry.get_job_ids() == ["n-1-again"]
    assert mail_catcher.messages() == [] and deliveries(redis) == {}

    # The other worker finishes; the retry finds the email sent and only reports it.
    installed.ledger.mark_sent("n-1")
    installed.ledger.release("n-1")
    queue.scheduled_job_registry.requeue("n-1-again")
    work(redis_url)

    assert mail_catcher.messages() == []
    assert list(deliveries(redis)) == ["delivery-n-1-sent"]


def test_smtp_down_defers_then_delivers_once(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet
    runtime.install(bootstrap.build(notifier_settings(redis_url, port, tmp_path)))
    try:
        queues.enqueue(redis, offer(), job_id="n-1")

        work(redis_url)

        queue = notifications(redis)
        assert queue.scheduled_job_registry.get_job_ids() == ["n-1"]
        assert queue.failed_job_registry.get_job_ids() == []
        deferred = deliveries(redis)["delivery-n-1-deferred"]
        assert deferred.outcome == "deferred"
        assert f"127.0.0.1:{port} refused the connection" in deferred.detail

        with MailCatcher(tmp_path / "mail", port=port) as catcher:
            # Run the retry now rather than wait out its interval.
            queue.scheduled_job_registry.requeue("n-1")
            work(redis_url)
            work(redis_url)

            assert len(catcher.messages()) == 1
        assert deliveries(redis)["delivery-n-1-sent"].outcome == "sent"
        assert queue.finished_job_registry.get_job_ids() == ["n-1"]
    finally:
        runtime.uninstall()


def test_the_last_retry_reports_failed(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    runtime.install(bootstrap.build(notifier_settings(redis_url, free_port(), tmp_path)))
    try:
        queue = notifications(redis)
        # The real route allows 8 retries; one is enough to show what happens after the last.
        handler = queues.ROUTES[queues.NOTIFICATIONS].handler
        queue.enqueue_call(handler, args=(codec.encode(offer()),), job_id="n-1", retry=Retry(max=1, interval=5))

        work(redis_url)
        queue.scheduled_job_registry.requeue("n-1")
        work(redis_url)

        assert queue.failed_job_registry.get_job_ids() == ["n-1"]
        reports = deliveries(redis)
        assert set(reports) == {"delivery-n-1-deferred", "delivery-n-1-failed"}
        assert reports["delivery-n-1-failed"].detail.startswith("gave up retrying: ")
    finally:
        runtime.uninstall()


def test_a_lost_connection_between_jobs_is_reopened(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    queues.enqueue(redis, offer("n-1"), job_id="n-1")
    work(redis_url)
    mail_catcher.stop()

    with MailCatcher(mail_catcher.directory, port=mail_catcher.port):
        queues.enqueue(redis, offer("n-2"), job_id="n-2")
        work(redis_url)

    sent = [message["Message-ID"] for message in read_mailbox(mail_catcher.directory)]
    assert sent == ["<n-1@handoff.local>", "<n-2@handoff.local>"]
    assert set(deliveries(redis)) == {"delivery-n-1-sent", "delivery-n-2-sent"}


def test_a_malformed_payload_fails_without_retry_and_the_worker_goes_on(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    route = queues.ROUTES[queues.NOTIFICATIONS]
    queue = notifications(redis)
    queue.enqueue_call(route.handler, args=("{not json",), job_id="garbage", retry=route.retry)
    wrong = codec.encode(EmailDelivery(notification_id="x", outcome="sent", at=datetime.now(UTC)))
    queue.enqueue_call(route.handler, args=(wrong,), job_id="wrong-message", retry=route.retry)
    queues.enqueue(redis, offer(), job_id="n-1")

    work(redis_url)

    assert sorted(queue.failed_job_registry.get_job_ids()) == ["garbage", "wrong-message"]
    assert queue.scheduled_job_registry.get_job_ids() == []
    assert "UndecodableMessage: cannot decode message" in exc_string(redis, "garbage")
    assert "RejectedJob: the notifier only sends SendEmail, not EmailDelivery" in exc_string(redis, "wrong-message")
    assert len(mail_catcher.messages()) == 1
    assert list(deliveries(redis)) == ["delivery-n-1-sent"]


def test_an_unknown_kind_fails_for_good_and_is_reported(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    queues.enqueue(redis, offer(kind="offer_v2"), job_id="n-1")

    work(redis_url)

    queue = notifications(redis)
    assert queue.failed_job_registry.get_job_ids() == ["n-1"]
    assert queue.scheduled_job_registry.get_job_ids() == []
    assert "unknown email kind 'offer_v2'" in exc_string(redis, "n-1")
    failed = deliveries(redis)["delivery-n-1-failed"]
    assert (failed.outcome, failed.detail) == ("failed", "unknown email kind 'offer_v2'")
    assert mail_catcher.messages() == []


def test_each_report_names_the_kind_of_its_email(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime
) -> None:
    queues.enqueue(redis, offer("n-1", kind="offer_reminder"), job_id="n-1")
    queues.enqueue(redis, offer("n-2", kind="offer_v2"), job_id="n-2")

    work(redis_url)

    reports = deliveries(redis)
    assert set(reports) == {"delivery-n-1-sent", "delivery-n-2-failed"}
    assert reports["delivery-n-1-sent"].kind == "offer_reminder"
    assert reports["delivery-n-2-failed"].kind == "offer_v2"


@pytest.mark.parametrize("kind", ["referral_accepted", "referral_declined", "outcome_reported", "no_partner_left"])
def test_therapist_emails_go_out(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, installed: Runtime, kind: str
) -> None:
    queues.enqueue(redis, offer(kind=kind, to="therapist@sunshine.example"), job_id="n-1")

    work(redis_url)

    [message] = mail_catcher.messages()
    assert message["To"] == "therapist@sunshine.example"
    assert message["Subject"].endswith("— ref HX-1234")


def test_the_entry_point_works_the_queue(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, tmp_path: Path
) -> None:
    queues.enqueue(redis, offer(), job_id="n-1")

    worker.main(notifier_settings(redis_url, mail_catcher.port, tmp_path), burst=True)

    assert len(mail_catcher.messages()) == 1
    assert list(deliveries(redis)) == ["delivery-n-1-sent"]


def test_without_an_installed_runtime_one_is_built_from_the_environment(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HANDOFF_REDIS_URL", redis_url)
    monkeypatch.setenv("HANDOFF_SMTP_PORT", str(mail_catcher.port))
    monkeypatch.setenv("HANDOFF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HANDOFF_CLINIC_NAME", "Bayfront Bodywork")
    queues.enqueue(redis, offer(), job_id="n-1")
    try:
        work(redis_url)
    finally:
        runtime.uninstall()

    [message] = mail_catcher.messages()
    assert message["Subject"] == "New urgent referral from Bayfront Bodywork — ref HX-1234"
