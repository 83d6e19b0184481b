"""Which staff tokens a revocation refuses: the time comparison, to the microsecond, through real
signed tokens (no Redis: see tests/integration/test_staff_revocation.py for the whole path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from shared.auth import (
    ALGORITHM,
    STAFF_AUDIENCE,
    Staff,
    from_microseconds,
    issue_staff_token,
    microseconds,
    verify_staff_token,
)
from shared.revocation import is_revoked

KEY = "k" * 32
STAFF = Staff(id="u1", email="dora@clinic.example", role="admin")
# A whole second, safely in the past (PyJWT refuses an iat in the future).
SECOND = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def issued_at(now: datetime) -> datetime:
    token = issue_staff_token(key=KEY, staff=STAFF, ttl=timedelta(hours=1), now=now)
    return verify_staff_token(token, key=KEY).issued_at


def test_nothing_is_revoked_without_a_revocation() -> None:
    assert not is_revoked(issued_at=SECOND, revoked_at=None)


def test_a_token_issued_up_to_the_revocation_is_refused_and_one_issued_after_it_accepted() -> None:
    revoked_at = SECOND + timedelta(milliseconds=500)
    assert is_revoked(issued_at=revoked_at - timedelta(microseconds=1), revoked_at=revoked_at)
    assert is_revoked(issued_at=revoked_at, revoked_at=revoked_at)  # the same microsecond: refused
    assert not is_revoked(issued_at=revoked_at + timedelta(microseconds=1), revoked_at=revoked_at)


def test_tokens_issued_in_the_second_of_a_revocation_are_told_apart() -> None:
    revoked_at = SECOND + timedelta(milliseconds=500)
    before, after = SECOND + timedelta(milliseconds=200), SECOND + timedelta(milliseconds=800)
    tokens = [issue_staff_token(key=KEY, staff=STAFF, ttl=timedelta(hours=1), now=moment) for moment in (before, after)]
    # Their standard iat is the same whole second: it alone could not tell them apart.
    assert {jwt.decode(t, options={"verify_signature": False})["iat"] for t in tokens} == {int(SECOND.timestamp())}
    assert is_revoked(issued_at=issued_at(before), revoked_at=revoked_at)
    assert not is_revoked(issued_at=issued_at(after), revoked_at=revoked_at)


def test_a_token_keeps_its_issue_time_to_the_microsecond() -> None:
    moment = SECOND + timedelta(microseconds=123_457)
    assert issued_at(moment) == moment
    assert from_microseconds(microseconds(moment)) == moment


def test_a_token_without_the_exact_time_is_refused_in_its_revocations_second_never_after_it() -> None:
    # Tokens signed before iat_us existed carry only the whole-second iat.
    claims = {
        "sub": STAFF.id,
        "email": STAFF.email,
        "role": STAFF.role,
        "aud": STAFF_AUDIENCE,
        "iat": SECOND + timedelta(milliseconds=900),
        "exp": SECOND + timedelta(hours=1),
    }
    old = verify_staff_token(jwt.encode(claims, KEY, algorithm=ALGORITHM), key=KEY)
    assert old.issued_at == SECOND
    assert is_revoked(issued_at=old.issued_at, revoked_at=SECOND + timedelta(milliseconds=100))
    assert not is_revoked(issued_at=old.issued_at, revoked_at=SECOND - timedelta(microseconds=1))
