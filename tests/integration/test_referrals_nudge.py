"""Every referrals write that stages emails wakes the outbox relay, once, after its transaction
has committed (issue 19): the relay then sends at once instead of at its next tick. Checked on a
real database with a stand-in for the relay's nudge; when each use case returns, its emails must
be visible, unsent, from a connection of the test's own (committed, not merely staged)."""

from __future__ import annotations

import asyncio

import msgspec
from sqlalchemy import func, select

from services.referrals import links
from services.referrals.intake import ReferralDraft
from services.referrals.rules import load as load_rules
from services.referrals.service import Referrals
from services.referrals.storage import offers, outbox
from services.referrals.storage.tables import staff_users
from shared import database
from shared.auth import Staff
from tests.support.referrals import CLIENT, CONSENT, SOON


def test_each_write_that_stages_emails_nudges_the_relay_after_its_commit(settings) -> None:
    async def scenario() -> list[tuple[str, int]]:
        engine = database.create_engine(settings.db_url("referrals"))
        watcher = database.create_engine(settings.db_url("referrals"))
        seen: list[int] = []  # one entry per nudge

        def nudge() -> None:
            seen.append(1)

        referrals = Referrals(
            sessions=database.sessions(engine), rules=load_rules(), settings=settings, on_commit=nudge
        )

        async def unsent() -> int:
            async with watcher.connect() as connection:
                query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                return (await connection.execute(query)).scalar_one()

        async def step(name: str, action) -> tuple[str, int]:
            before = len(seen)
            await action()
            assert len(seen) == before + 1, f"{name}: the relay was nudged {len(seen) - before} times"
            return name, await unsent()

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
    # Each step committed more emails before it nudged: the offer; the decline's next offer; the
    # withdrawal. A nudge before its commit would have seen fewer.
    assert [name for name, _ in counts] == ["create", "decline", "cancel"]
    assert counts[0][1] >= 1 and counts[1][1] > counts[0][1] and counts[2][1] > counts[1][1], counts
