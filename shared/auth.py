"""Signed, expiring tokens: staff bearer tokens (verified by every web service) and single-offer
partner links. Each kind has its own audience, so one can never stand in for the other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
import msgspec

Role = Literal["admin", "therapist"]
ROLES: tuple[Role, ...] = ("admin", "therapist")
STAFF_AUDIENCE = "handoff:staff"
ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, tampered with, expired or meant for something else."""


class Staff(msgspec.Struct, frozen=True):
    """The authenticated staff member behind a request."""

    id: str
    email: str
    role: Role


def issue_staff_token(*, key: str, staff: Staff, ttl: timedelta, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "sub": staff.id,
        "email": staff.email,
        "role": staff.role,
        "aud": STAFF_AUDIENCE,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_staff_token(token: str, *, key: str) -> Staff:
    claims = verify(token, key=key, audience=STAFF_AUDIENCE)
    if claims.get("role") not in ROLES:
        raise InvalidToken("unknown role")
    return Staff(id=str(claims["sub"]), email=str(claims.get("email", "")), role=claims["role"])


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
