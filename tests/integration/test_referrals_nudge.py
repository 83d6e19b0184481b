"""Every referrals write that stages emails hands them to the outbox relay after its transaction
has committed (issue 19): the relay then sends at once instead of at its next tick. Checked on a
real database with a relay that is not working its loop: when each use case returns, the rows it
handed over must be exactly its new outbox rows, visible from a connection of the test's own
(committed, not merely staged)."""

from __future__ import annotations

import asyncio

import msgspec
from sqlalchemy import select

from services.referrals import links
from services.referrals.intake import ReferralDraft
from services.referrals.rules import load as load_rules
from services.referrals.service import Referrals
from services.referrals.storage import offers, outbox
from services.referrals.storage.tables import staff_users
from shared import database
from shared.auth import Staff
from shared.outbox import Relay
from tests.support.referrals import CLIENT, CONSENT, SOON


class Watched(Relay):
    """A relay that takes what commits hand over (as a running one does) but never sends it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._running = True

    def handed(self) -> list[str]:
        return [row.id for row in self._committed]


def test_each_write_that_stages_emails_hands_them_to_the_relay_after_its_commit(settings) -> None:
    async def scenario() -> list[tuple[str, int]]:
        engine = database.create_engine(settings.db_url("referrals"))
        watcher = database.create_engine(settings.db_url("referrals"))
        sessions = database.sessions(engine)
        relay = Watched(sessions=sessions, table=outbox, redis=None, interval=60.0)
        referrals = Referrals(sessions=sessions, rules=load_rules(), settings=settings)

        async def committed() -> list[str]:
            async with watcher.connect() as connection:
                query = select(outbox.c.id).where(outbox.c.sent_at.is_(None))
                return list((await connection.execute(query)).scalars())

        async def step(name: str, action) -> tuple[str, int]:
            before = set(await committed())
            await action()
            new = set(await committed()) - before
            assert new, f"{name}: staged no email"
            assert sorted(relay.handed()) == sorted(before | new), f"{name}: handed over {relay.handed()}"
            return name, len(new)

        try:
            async with engine.connect() as connection:
                row = (await connection.execute(select(staff_users).where(staff_users.c.role == "therapist"))).first()
            tess = Staff(id=row.id, email=row.email, role="therapist")
            draft = msgspec.convert(
                {
                    "client": CLIENT,
                    "consent": CONSENT,
                    "reasons": SOON,  # one partner at a time: one offer to decline
                    "partner_ids": ["gp1", "gp2"],
                },
                ReferralDraft,
            )
            made: list = []

            async def create() -> None:
                made.append(await referrals.create(staff=tess, draft=draft))

            async def decline() -> None:
                async with engine.connect() as connection:
                    first = (
                        await connection.execute(
                            select(offers.c.id, offers.c.expires_at, offers.c.offer_nonce).where(
                                offers.c.referral_id == made[0].id, offers.c.status == "offered"
                            )
                        )
                    ).one()
                token = links.issue(
                    key=settings.keyring(),
                    offer_id=first.id,
                    expires_at=made[0].offers[0].expires_at,
                    nonce=first.offer_nonce or "",
                )
                await referrals.answer(token=token, decision="decline", reason="not_accepting")

            async def cancel() -> None:
                await referrals.cancel(staff=tess, referral_id=made[0].id, reason="client moved away")

            return [
                await step("create", create),
                await step("decline", decline),
                await step("cancel", cancel),
            ]
        finally:
            await engine.dispose()
            await watcher.dispose()

    counts = asyncio.run(scenario())
    # The offer; the decline's next offer (and the therapist's email); the withdrawal.
    assert [name for name, _ in counts] == ["create", "decline", "cancel"]
    assert all(n >= 1 for _, n in counts), counts
