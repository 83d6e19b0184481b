"""Pure referral rules: the state machine, consent, wording, deadlines, partner links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.referrals import links
from services.referrals.domain import InvalidTransition, check_consent, check_transition, diagnostic_wording
from services.referrals.offers import add_business_days
from shared.auth import InvalidToken, Staff, issue_staff_token, verify_staff_token
from shared.errors import InvalidInput


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("requested", "accepted"),
        ("accepted", "in-progress"),
        ("in-progress", "completed"),
        ("requested", "cancelled"),
        ("on-hold", "requested"),
        ("failed", "requested"),
        ("requested", "received"),
        ("received", "accepted"),
        ("received", "requested"),
    ],
)
def test_allowed_transitions(current: str, target: str) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("completed", "requested"),
        ("cancelled", "accepted"),
        ("draft", "completed"),
        ("requested", "completed"),
        ("accepted", "received"),
        ("cancelled", "received"),
    ],
)
def test_refused_transitions(current: str, target: str) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def test_consent_must_be_given_and_cover_every_kind() -> None:
    check_consent(given=True, scope=["clinical"], kinds_needed={"clinical"})
    with pytest.raises(InvalidInput) as refused:
        check_consent(given=False, scope=["clinical"], kinds_needed={"clinical"})
    assert refused.value.field == "consent.given"
    with pytest.raises(InvalidInput) as narrow:
        check_consent(given=True, scope=["clinical"], kinds_needed={"clinical", "non_clinical"})
    assert narrow.value.field == "consent.scope" and "non-clinical" in narrow.value.detail


def test_diagnostic_wording_is_spotted() -> None:
    assert diagnostic_wording("Client was diagnosed last year; you have sciatica") == ["diagnosed", "you have"]
    assert diagnostic_wording("Left calf warm to touch, client reports tingling") == []


def test_business_days_skip_weekends_in_clinic_time() -> None:
    friday_afternoon = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # 15:00 in New York
    due = add_business_days(friday_afternoon, 1, timezone="America/New_York")
    assert due.astimezone(UTC) == datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # Monday 15:00
    assert add_business_days(friday_afternoon, 5, timezone="America/New_York").weekday() == 4


def test_deadline_keeps_local_time_across_dst() -> None:
    before_change = datetime(2026, 10, 30, 14, 0, tzinfo=UTC)  # Friday 10:00 EDT
    due = add_business_days(before_change, 1, timezone="America/New_York")  # Monday, now EST
    assert due.astimezone(UTC) == datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def test_partner_link_names_its_offer_and_refuses_tampering_and_expiry() -> None:
    future = datetime.now(UTC) + timedelta(days=1)
    token = links.issue(key="k" * 32, offer_id="offer-1", expires_at=future, nonce="first-offering")
    assert links.read(token, key="k" * 32) == ("offer-1", "first-offering")
    # A link made before offerings had nonces names none.
    assert links.read(links.issue(key="k" * 32, offer_id="offer-1", expires_at=future), key="k" * 32) == ("offer-1", "")
    with pytest.raises(InvalidToken):
        links.read(token[:-2] + "xx", key="k" * 32)
    with pytest.raises(InvalidToken):
        links.read(token, key="other-key" * 4)
    expired = links.issue(key="k" * 32, offer_id="offer-1", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(InvalidToken, match="expired"):
        links.read(expired, key="k" * 32)
    with pytest.raises(InvalidToken):
        links.read(token, key="k" * 32, purpose="report")


def test_an_inbox_link_names_its_address_and_generation_and_nothing_else_reads_it() -> None:
    future = datetime.now(UTC) + timedelta(days=180)
    token = links.issue_inbox(key="k" * 32, email=" Ana@Example.org", generation=2, expires_at=future)
    assert links.read_inbox(token, key="k" * 32) == ("ana@example.org", 2)
    with pytest.raises(InvalidToken):
        links.read_inbox(token[:-2] + "xx", key="k" * 32)
    expired = links.issue_inbox(key="k" * 32, email="a@b.org", generation=0, expires_at=datetime.now(UTC))
    with pytest.raises(InvalidToken, match="expired"):
        links.read_inbox(expired, key="k" * 32)
    # Its own audience: an inbox link answers no offer, and no offer link opens an inbox.
    with pytest.raises(InvalidToken):
        links.read(token, key="k" * 32)
    answer = links.issue(key="k" * 32, offer_id="o", expires_at=future)
    with pytest.raises(InvalidToken):
        links.read_inbox(answer, key="k" * 32)
    staff = issue_staff_token(
        key="k" * 32, staff=Staff(id="u1", email="t@c.org", role="admin"), ttl=timedelta(minutes=5)
    )
    with pytest.raises(InvalidToken):
        links.read_inbox(staff, key="k" * 32)
    with pytest.raises(InvalidToken):
        verify_staff_token(token, key="k" * 32)


def test_staff_tokens_and_partner_links_are_not_interchangeable() -> None:
    staff = Staff(id="u1", email="t@clinic.example", role="therapist")
    token = issue_staff_token(key="k" * 32, staff=staff, ttl=timedelta(minutes=5))
    assert verify_staff_token(token, key="k" * 32).staff == staff
    link = links.issue(key="k" * 32, offer_id="o", expires_at=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidToken):
        verify_staff_token(link, key="k" * 32)
    with pytest.raises(InvalidToken):
        links.read(token, key="k" * 32)
    stale = issue_staff_token(
        key="k" * 32, staff=staff, ttl=timedelta(minutes=5), now=datetime.now(UTC) - timedelta(hours=1)
    )
    with pytest.raises(InvalidToken, match="expired"):
        verify_staff_token(stale, key="k" * 32)
