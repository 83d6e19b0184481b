"""The referrals worker's job: apply one message from the ``referrals`` queue.

RQ finds this function by its dotted path (see :mod:`shared.queues`), so the process-wide
runtime is held here, set by :func:`services.referrals.worker.main` or built on first use.
"""

from __future__ import annotations

import asyncio
import logging

from services.referrals import bootstrap
from shared import codec
from shared.config import load_settings
from shared.messages import EmailDelivery, PartnerChanged
from shared.worker import give_up

log = logging.getLogger(__name__)


class _Process:
    """One event loop and one runtime for the life of the worker process (no fork per job)."""

    def __init__(self, runtime: bootstrap.Runtime | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime = runtime or bootstrap.build(load_settings())


_process: _Process | None = None


def use(runtime: bootstrap.Runtime | None = None) -> None:
    """Set the runtime jobs in this process use (the worker entry point and tests call this)."""
    global _process
    _process = _Process(runtime)


def handle(payload: str) -> None:
    """Decode and apply one message. Undecodable or unexpected messages fail without retry."""
    if _process is None:
        use()
    try:
        message = codec.decode(payload)
    except codec.UndecodableMessage:
        give_up()
        raise
    _process.loop.run_until_complete(_apply(_process.runtime, message))


async def _apply(runtime: bootstrap.Runtime, message: object) -> None:
    match message:
        case PartnerChanged():
            applied = await runtime.referrals.apply_partner_changed(message)
            log.info("partner %s v%d %s", message.partner.id, message.version, "applied" if applied else "ignored")
        case EmailDelivery():
            await runtime.referrals.record_delivery(message)
        case _:
            give_up()
            raise TypeError(f"the referrals queue does not take {type(message).__name__} messages")
    # Whatever the message caused (next offers, emails) leaves now rather than at a relay's tick.
    await runtime.relay.flush()
