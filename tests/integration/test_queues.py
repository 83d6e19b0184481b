"""shared.queues against a real Redis: how a message becomes an RQ job."""

from __future__ import annotations

from redis import Redis

from shared import codec, queues
from tests.support.notifier import notifications, offer


def test_a_job_is_enqueued_once_by_its_id(redis: Redis) -> None:
    assert queues.enqueue(redis, offer(), job_id="n-1")
    assert not queues.enqueue(redis, offer(), job_id="n-1")

    assert notifications(redis).job_ids == ["n-1"]


def test_a_job_given_a_pipeline_is_written_by_its_transaction(redis: Redis) -> None:
    with redis.pipeline(transaction=True) as pipe:
        pipe.multi()
        pipe.set("written-with-the-job", "1")
        queues.enqueue(redis, offer(), job_id="n-1", pipeline=pipe)
        assert notifications(redis).job_ids == [] and redis.get("written-with-the-job") is None

        pipe.execute()

    assert notifications(redis).job_ids == ["n-1"] and redis.get("written-with-the-job") == b"1"
    assert list(notifications(redis).fetch_job("n-1").args) == [codec.encode(offer())]
