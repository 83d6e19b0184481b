"""Signed, expiring tokens: staff bearer tokens (verified by every web service) and single-offer
partner links. Each kind has its own audience, so one can never stand in for the other.

A staff token also carries ``iat_us``, its issue time to the microsecond: ``iat`` is whole seconds,
too coarse to tell a token issued just before its account was disabled from one issued just
after the account was enabled again (see :mod:`shared.revocation`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
import msgspec

Role = Literal["admin", "therapist"]
ROLES: tuple[Role, ...] = ("admin", "therapist")
STAFF_AUDIENCE = "handoff:staff"
ALGORITHM = "HS256"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidToken(Exception):
    """The token is missing, malformed, tampered with, expired or meant for something else."""


class Staff(msgspec.Struct, frozen=True):
    """The authenticated staff member behind a request."""

    id: str
    email: str
    role: Role


class StaffToken(msgspec.Struct, frozen=True):
    """A verified staff token: the staff member it names and when it was issued."""

    staff: Staff
    issued_at: datetime


def microseconds(moment: datetime) -> int:
    """``moment`` as whole microseconds since the epoch: exact, where a float timestamp rounds."""
    return (moment - EPOCH) // _MICROSECOND


def from_microseconds(value: int) -> datetime:
    return EPOCH + value * _MICROSECOND


def issue_staff_token(*, key: str, staff: Staff, ttl: timedelta, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "sub": staff.id,
        "email": staff.email,
        "role": staff.role,
        "aud": STAFF_AUDIENCE,
        "iat": now,
        "iat_us": microseconds(now),
        "exp": now + ttl,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_staff_token(token: str, *, key: str) -> StaffToken:
    """The staff member and issue time of a valid staff token; :class:`InvalidToken` otherwise."""
    claims = verify(token, key=key, audience=STAFF_AUDIENCE)
    if claims.get("role") not in ROLES:
        raise InvalidToken("unknown role")
    staff = Staff(id=str(claims["sub"]), email=str(claims.get("email", "")), role=claims["role"])
    exact, whole = claims.get("iat_us"), claims.get("iat")
    if isinstance(exact, int):
        issued_at = from_microseconds(exact)
    else:
        # A token without the exact time counts as issued at the start of its second (or of
        # time itself): it may then be refused too early after a revocation, never too late.
        issued_at = from_microseconds(int(whole) * 1_000_000) if isinstance(whole, int | float) else EPOCH
    return StaffToken(staff=staff, issued_at=issued_at)


def sign(claims: dict, *, key: str, audience: str, expires_at: datetime) -> str:
    """Sign ``claims`` for ``audience`` until ``expires_at``."""
    return jwt.encode({**claims, "aud": audience, "exp": expires_at}, key, algorithm=ALGORITHM)


def verify(token: str, *, key: str, audience: str) -> dict:
    try:
        return jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience, options={"require": ["exp", "aud"]})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("expired") from None
    except jwt.PyJWTError:
        raise InvalidToken("invalid") from None
