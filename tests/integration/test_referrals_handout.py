"""The client's printable handout: staff only, plain words, partners to contact, the clinic's
contact, one sheet when printed, every view and print audited."""

from __future__ import annotations

import asyncio

import msgspec
from litestar.testing import TestClient
from sqlalchemy import select

from services.referrals.storage import audit_log
from services.referrals.web.app import create_app
from shared import database
from shared.messages import Address
from tests.support.referrals import PASSWORD, URGENT, changed, csrf, deliver, log_in, login, new_referral, partner


def audited(settings) -> list[str]:
    async def run() -> list[str]:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.connect() as connection:
            rows = (await connection.execute(select(audit_log.c.action).order_by(audit_log.c.id))).all()
        await engine.dispose()
        return [r.action for r in rows if r.action.startswith("handout")]

    return asyncio.run(run())


def test_handout_is_for_staff_in_plain_words_and_audited(settings) -> None:
    gp1 = msgspec.structs.replace(
        partner("gp1", "primary_care", name="Dr. Ana Gomez"),
        phone="+17275550101",
        website="https://gomez.example",
        address=Address(line1="200 Central Ave", city="St. Petersburg", state="FL", postal_code="33701"),
    )
    deliver(settings, changed(gp1, version=2))
    clinic = msgspec.structs.replace(
        settings, clinic_phone="+17275550199", clinic_address="1 Bay St, St. Petersburg, FL"
    )
    with TestClient(create_app(clinic)) as client:
        referral = new_referral(client, login(client), reasons=URGENT, note="Left calf warm and swollen since Tuesday.")
        path = f"/referrals/{referral['id']}/handout"
        assert client.get(path, follow_redirects=False).status_code == 303  # to the login page
        assert audited(settings) == []

        log_in(client)
        page = client.get(path)
        assert page.status_code == 200
        text = page.text
        # Second edition (issue 17): the review found "soon" understated the urgency.
        assert "swelling in one limb that a doctor should check today" in text
        assert "Left calf warm" not in text and "calf_swelling_one_side" not in text
        assert "Dr. Ana Gomez" in text and "(727) 555-0101" in text and "200 Central Ave" in text
        assert "https://gomez.example" in text and "Dr. Ben Ode" in text
        assert "(727) 555-0199" in text and "1 Bay St" in text
        # Urgent means today (second edition): no "tomorrow at the latest" any more.
        assert "Please be seen today" in text and "If it gets worse, call 911." in text
        assert "tomorrow" not in text
        assert "@media print" in text and "@page" in text
        assert audited(settings) == ["handout_viewed"]

        print_path = f"{path}/print"
        assert client.post(print_path).status_code == 403  # CSRF
        printed = client.post(print_path, data={"_csrf_token": csrf(text)})
        assert printed.status_code == 200 and 'data-print="now"' in printed.text
        assert audited(settings) == ["handout_viewed", "handout_printed"]

        # The referral page links to it.
        assert f'href="{path}"' in client.get(f"/referrals/{referral['id']}").text


def test_another_therapist_cannot_see_the_handout(settings) -> None:
    from services.referrals import identity

    async def add() -> None:
        engine = database.create_engine(settings.db_url("referrals"))
        await identity.add_user(
            database.sessions(engine), email="other@clinic.example", role="therapist", password=PASSWORD
        )
        await engine.dispose()

    asyncio.run(add())
    with TestClient(create_app(settings)) as client:
        referral = new_referral(client, login(client))
        log_in(client, email="other@clinic.example")
        assert client.get(f"/referrals/{referral['id']}/handout").status_code == 404
    assert audited(settings) == []
