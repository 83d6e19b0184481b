"""How the notifier paces, retries and gives up, against a real Redis and a real SMTP server:
the retry schedule RQ really applies, the shared rate limit, and the operator's view of failed
jobs (``handoff notifier failed`` / ``requeue``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from services import cli
from services.dev.mail_catcher import MailCatcher
from services.dev.ports import free_port
from services.notifier import bootstrap, failures
from services.notifier.bootstrap import Runtime
from services.notifier.jobs import runtime
from services.notifier.throttle import RateLimiter, account_key
from shared import queues
from shared.config import load_settings
from tests.support.notifier import deliveries, notifications, notifier_settings, offer, work


def install(redis_url: str, smtp_port: int, data_dir: Path, **settings: object) -> Runtime:
    base = notifier_settings(redis_url, smtp_port, data_dir)
    fields = {name: getattr(base, name) for name in base.__struct_fields__}
    installed = bootstrap.build(load_settings({}, **{**fields, **settings}))
    runtime.install(installed)
    return installed


@pytest.fixture
def smtp_down(redis_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose SMTP server does not listen."""
    yield install(redis_url, free_port(), tmp_path)
    runtime.uninstall()


# --- Retries ----------------------------------------------------------------------------------


def test_retries_wait_longer_and_longer_then_fail_and_report(redis: Redis, redis_url: str, smtp_down: Runtime) -> None:
    queues.enqueue(redis, offer(), job_id="n-1")
    queue = notifications(redis)
    registry = queue.scheduled_job_registry
    waits = []
    for _ in range(10):
        work(redis_url)
        [job_id] = registry.get_job_ids()
        due = registry.get_scheduled_time(job_id)
        ended = queue.fetch_job(job_id).ended_at
        waits.append((due - ended).total_seconds())
        registry.requeue(job_id)  # run the retry now rather than wait for it
    work(redis_url)

    # RQ keeps the due time in whole seconds, hence the tolerance.
    assert waits == pytest.approx([5, 15, 30, 60, 120, 300, 900, 1800, 1800, 1800], abs=1.5)
    assert queue.failed_job_registry.get_job_ids() == ["n-1"]
    reports = deliveries(redis)
    assert reports["delivery-n-1-deferred"].outcome == "deferred"
    assert reports["delivery-n-1-failed"].detail.startswith("gave up retrying: ")


def test_a_refused_recipient_is_not_retried_and_is_reported(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    from tests.support.smtp import RecordingServer as Server

    server = Server(free_port()).start()
    install(redis_url, server.port, tmp_path)
    try:
        queues.enqueue(redis, offer(to="reject@ruiz.example"), job_id="n-1")
        work(redis_url)
    finally:
        runtime.uninstall()
        server.stop()

    queue = notifications(redis)
    assert queue.failed_job_registry.get_job_ids() == ["n-1"]
    assert queue.scheduled_job_registry.get_job_ids() == []
    failed = deliveries(redis)["delivery-n-1-failed"]
    assert "550 5.1.1 no such mailbox" in failed.detail


# --- Rate limit -------------------------------------------------------------------------------


class Sleeps:
    """Records the waits asked for instead of sleeping (the Redis bucket itself is real)."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def test_the_bucket_is_shared_and_reserves_short_waits(redis: Redis) -> None:
    sleeps = Sleeps()
    key = account_key(host="smtp.example", port=587, username="clinic")
    # Two workers' limiters on the same account: 60 a minute is one a second between them.
    first = RateLimiter(redis, key=key, per_minute=60, max_wait=1.5, sleep=sleeps)
    second = RateLimiter(redis, key=key, per_minute=60, max_wait=1.5, sleep=sleeps)

    assert first.acquire() == 0.0  # the bucket starts full (one second's worth: one)
    assert second.acquire() == 0.0  # slot reserved about 1 s ahead: slept for it
    later = first.acquire()  # about 2 s ahead: more than max_wait, so not taken

    assert len(sleeps.asked) == 1 and 0.5 < sleeps.asked[0] <= 1.0
    assert 1.5 < later <= 2.0
    assert redis.exists(key)


def test_another_account_has_its_own_bucket(redis: Redis) -> None:
    sleeps = Sleeps()
    one = RateLimiter(redis, key=account_key(host="a.example", port=587, username="x"), per_minute=1, sleep=sleeps)
    other = RateLimiter(redis, key=account_key(host="b.example", port=587, username="x"), per_minute=1, sleep=sleeps)

    assert one.acquire() == 0.0
    assert other.acquire() == 0.0
    assert one.acquire() > 50  # a minute's wait for the next one
    assert sleeps.asked == []


def test_no_limit_never_waits(redis: Redis) -> None:
    limiter = RateLimiter(redis, key="handoff:notifier:rate:none", per_minute=0, sleep=Sleeps())

    assert [limiter.acquire() for _ in range(100)] == [0.0] * 100
    assert not redis.exists("handoff:notifier:rate:none")


def test_a_throttled_email_waits_without_spending_a_retry(
    redis: Redis, redis_url: str, mail_catcher: MailCatcher, tmp_path: Path
) -> None:
    install(redis_url, mail_catcher.port, tmp_path, smtp_rate_per_minute=1)
    try:
        queues.enqueue(redis, offer("n-1"), job_id="n-1")
        queues.enqueue(redis, offer("n-2"), job_id="n-2")
        work(redis_url)
    finally:
        runtime.uninstall()

    queue = notifications(redis)
    assert len(mail_catcher.messages()) == 1
    assert queue.scheduled_job_registry.get_job_ids() == ["n-2"]
    waiting = queue.fetch_job("n-2")
    assert waiting.retries_left == queues.ROUTES[queues.NOTIFICATIONS].retry.max
    due = queue.scheduled_job_registry.get_scheduled_time("n-2")
    assert 50 <= (due - waiting.ended_at).total_seconds() <= 61
    assert list(deliveries(redis)) == ["delivery-n-1-sent"]  # no "deferred": it is not a failure


def test_rate_setting_must_not_be_negative() -> None:
    from shared.config import ConfigError

    with pytest.raises(ConfigError, match="HANDOFF_SMTP_RATE_PER_MINUTE"):
        load_settings({"HANDOFF_SMTP_RATE_PER_MINUTE": "-1"})


# --- handoff notifier failed / requeue ---------------------------------------------------------


@pytest.fixture
def two_failed(redis: Redis, redis_url: str, mail_catcher: MailCatcher, tmp_path: Path) -> None:
    """Two failed jobs: an unknown kind, and a payload that is not a message."""
    install(redis_url, mail_catcher.port, tmp_path)
    try:
        queues.enqueue(redis, offer("n-1", kind="offer_v2"), job_id="n-1")
        route = queues.ROUTES[queues.NOTIFICATIONS]
        notifications(redis).enqueue_call(route.handler, args=("{not json",), job_id="garbage", retry=route.retry)
        work(redis_url)
    finally:
        runtime.uninstall()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    # cli.main() configures logging onto the captured stderr, which pytest closes after the test.
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def cli_run(monkeypatch: pytest.MonkeyPatch, redis_url: str, *argv: str) -> int:
    monkeypatch.setenv("HANDOFF_REDIS_URL", redis_url)
    return cli.main(["notifier", *argv])


@pytest.mark.usefixtures("two_failed")
def test_failed_lists_each_job_with_its_reason_and_no_address(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_run(monkeypatch, redis_url, "failed") == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == failures.HEADER
    rows = {line.split("\t")[0]: line.split("\t") for line in out[1:]}
    assert set(rows) == {"n-1", "garbage"}
    assert rows["n-1"][1:4] == ["n-1", "offer_v2", "@ruiz.example"]
    assert rows["n-1"][5] == "services.notifier.rendering.CannotRender: unknown email kind 'offer_v2'"
    assert rows["garbage"][1:4] == ["-", "-", "-"]
    assert rows["garbage"][5].startswith("shared.codec.UndecodableMessage: cannot decode message")
    assert "intake@" not in "\n".join(out)


def test_requeued_jobs_get_their_retries_back_and_still_send_once(
    redis: Redis,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()  # SMTP is down until the operator has fixed it
    install(redis_url, port, tmp_path)
    try:
        queue = notifications(redis)
        # The same notification twice (a duplicated job), each on its last try.
        for job_id in ("n-1", "n-1-copy"):
            queues.enqueue(redis, offer("n-1"), job_id=job_id)
            job = queue.fetch_job(job_id)
            job.retries_left = 0
            job.save()
        work(redis_url)
        assert sorted(queue.failed_job_registry.get_job_ids()) == ["n-1", "n-1-copy"]

        assert cli_run(monkeypatch, redis_url, "requeue", "n-1") == 0
        assert "requeued 1 email job(s)" in capsys.readouterr().out
        assert queue.failed_job_registry.get_job_ids() == ["n-1-copy"]
        assert queue.fetch_job("n-1").retries_left == queues.ROUTES[queues.NOTIFICATIONS].retry.max

        with MailCatcher(tmp_path / "mail", port=port) as catcher:
            work(redis_url)
            assert cli_run(monkeypatch, redis_url, "requeue", "--all") == 0
            work(redis_url)

            assert len(catcher.messages()) == 1
    finally:
        runtime.uninstall()

    assert queue.failed_job_registry.get_job_ids() == []
    assert sorted(queue.finished_job_registry.get_job_ids()) == ["n-1", "n-1-copy"]
    assert deliveries(redis)["delivery-n-1-sent"].outcome == "sent"


@pytest.mark.usefixtures("two_failed")
def test_requeue_of_an_unknown_id_changes_nothing(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_run(monkeypatch, redis_url, "requeue", "n-404") == 1

    assert "not a failed notification job: n-404" in capsys.readouterr().err
    assert sorted(notifications(redis).failed_job_registry.get_job_ids()) == ["garbage", "n-1"]


@pytest.mark.usefixtures("two_failed")
def test_requeue_all_puts_every_failed_job_back(
    redis: Redis,
    redis_url: str,
    mail_catcher: MailCatcher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli_run(monkeypatch, redis_url, "requeue", "--all") == 0
    queue = notifications(redis)
    assert sorted(queue.get_job_ids()) == ["garbage", "n-1"]

    install(redis_url, mail_catcher.port, tmp_path)
    try:
        work(redis_url)
    finally:
        runtime.uninstall()

    # They fail again for the same reasons, and nothing was sent.
    assert sorted(queue.failed_job_registry.get_job_ids()) == ["garbage", "n-1"]
    assert mail_catcher.messages() == []
