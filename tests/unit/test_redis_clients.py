"""The Redis clients' timeouts agree with what waits on them. Building a client connects nothing."""

from __future__ import annotations

from shared import queues, redis_client, worker

NOWHERE = "redis://127.0.0.1:1/0"


def test_a_workers_connection_outlasts_its_blocking_wait_for_a_job() -> None:
    connection = redis_client.connect(NOWHERE, use="worker", blocks_for=worker.DEQUEUE_TIMEOUT_SECONDS)
    rq_worker = worker.HandoffWorker(
        [queues.rq_queue(queues.NOTIFICATIONS, connection)],
        connection=connection,
        worker_ttl=worker.WORKER_TTL_SECONDS,
        prepare_for_work=False,
    )
    # RQ derives its blocking dequeue from the TTL: the constant must follow RQ's rule.
    assert rq_worker.dequeue_timeout == worker.DEQUEUE_TIMEOUT_SECONDS
    assert connection.connection_pool.connection_kwargs["socket_timeout"] > rq_worker.dequeue_timeout


def test_a_web_client_gives_up_on_an_unresponsive_redis_within_seconds() -> None:
    # What /ready (and a request that finds Redis away) waits at worst: every try timing out.
    web = redis_client.PROFILES["web"]
    worst = (1 + web.retries) * (web.connect_timeout + web.read_timeout) + web.retries * web.backoff_cap
    assert worst <= 10
    kwargs = redis_client.connect(NOWHERE, use="web").connection_pool.connection_kwargs
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (web.connect_timeout, web.read_timeout)
    assert kwargs["retry"].get_retries() == web.retries
    assert (
        redis_client.connect_async(NOWHERE, use="web").connection_pool.connection_kwargs["socket_timeout"]
        == web.read_timeout
    )


def test_a_worker_rides_out_a_redis_restart_inside_one_call() -> None:
    # A restart as the fault drills do it keeps Redis away about 5 s; a job waits instead of failing.
    assert redis_client.patience("worker") >= 8
