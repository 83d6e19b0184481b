"""Signed, expiring tokens: staff bearer tokens (verified by every web service) and single-offer
partner links. Each kind has its own audience, so one can never stand in for the other.

A staff token also carries ``iat_us``, its issue time to the microsecond: ``iat`` is whole seconds,
too coarse to tell a token issued just before its account was disabled from one issued just
after the account was enabled again (see :mod:`shared.revocation`); and ``sid``, the sign-in it
belongs to, which logging out ends.

Every token is signed with the keyring's signing key and names it (``kid``); earlier keys still
verify what they signed (see :mod:`shared.keys`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
import msgspec

from shared.keys import Keyring

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
    """A verified staff token: the staff member it names, when it was issued, and the sign-in it
    belongs to ("" for a token from before sign-ins were named)."""

    staff: Staff
    issued_at: datetime
    session_id: str = ""


def microseconds(moment: datetime) -> int:
    """``moment`` as whole microseconds since the epoch: exact, where a float timestamp rounds."""
    return (moment - EPOCH) // _MICROSECOND


def from_microseconds(value: int) -> datetime:
    return EPOCH + value * _MICROSECOND


def issue_staff_token(
    *, key: str | Keyring, staff: Staff, ttl: timedelta, now: datetime | None = None, session_id: str | None = None
) -> str:
    """A staff token for a new sign-in (or for ``session_id``'s)."""
    now = now or datetime.now(UTC)
    claims = {
        "sub": staff.id,
        "email": staff.email,
        "role": staff.role,
        "sid": session_id or uuid.uuid4().hex,
        "iat": now,
        "iat_us": microseconds(now),
    }
    return sign(claims, key=key, audience=STAFF_AUDIENCE, expires_at=now + ttl)


def verify_staff_token(token: str, *, key: str | Keyring) -> StaffToken:
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
    session = claims.get("sid")
    return StaffToken(staff=staff, issued_at=issued_at, session_id=session if isinstance(session, str) else "")


def sign(claims: dict, *, key: str | Keyring, audience: str, expires_at: datetime) -> str:
    """Sign ``claims`` for ``audience`` until ``expires_at``, with the keyring's signing key."""
    keyring = Keyring.of(key)
    return jwt.encode(
        {**claims, "aud": audience, "exp": expires_at},
        keyring.signing,
        algorithm=ALGORITHM,
        headers={"kid": keyring.signing_id},
    )


def verify(token: str, *, key: str | Keyring, audience: str) -> dict:
    """The claims of ``token``, signed by a key of the keyring for ``audience`` and not expired."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        raise InvalidToken("invalid") from None
    expired = False
    for candidate in Keyring.of(key).verifying(kid):
        try:
            return jwt.decode(
                token, candidate, algorithms=[ALGORITHM], audience=audience, options={"require": ["exp", "aud"]}
            )
        except jwt.ExpiredSignatureError:
            expired = True  # the signature held: no other key will make it younger
            break
        except jwt.PyJWTError:
            continue
    raise InvalidToken("expired" if expired else "invalid")
