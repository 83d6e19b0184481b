"""Staff accounts: argon2 password hashes, roles, and the email + password → token exchange."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.referrals.storage import staff_users
from shared.auth import ROLES, Staff
from shared.errors import Conflict, InvalidInput

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
# Verified against when the email is unknown, so a wrong email costs as much time as a wrong
# password and response times do not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0000")


class BadCredentials(Exception):
    """Email unknown, account disabled or password wrong (deliberately not saying which)."""


def _normalise(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
        raise InvalidInput(f"{email!r} is not an email address", field="email")
    return email


async def add_user(sessions: async_sessionmaker, *, email: str, role: str, password: str) -> Staff:
    """Create a staff account. Argon2 hashing runs off the event loop (it is deliberately slow)."""
    email = _normalise(email)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password needs at least {MIN_PASSWORD_LENGTH} characters", field="password")
    password_hash = await anyio.to_thread.run_sync(_hasher.hash, password)
    staff = Staff(id=str(uuid.uuid4()), email=email, role=role)  # type: ignore[arg-type]
    try:
        async with sessions.begin() as session:
            await session.execute(
                insert(staff_users).values(
                    id=staff.id, email=email, role=role, password_hash=password_hash,
                    active=True, created_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        raise Conflict(f"a staff account for {email} already exists", field="email") from None
    return staff


async def authenticate(sessions: async_sessionmaker, *, email: str, password: str) -> Staff:
    """The staff member with these credentials, or :class:`BadCredentials`."""
    async with sessions() as session:
        row = (
            await session.execute(select(staff_users).where(staff_users.c.email == email.strip().lower()))
        ).first()
    stored = row.password_hash if row is not None and row.active else _DUMMY_HASH
    try:
        await anyio.to_thread.run_sync(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        raise BadCredentials() from None
    if row is None or not row.active:
        raise BadCredentials()
    return Staff(id=row.id, email=row.email, role=row.role)


async def get_user(sessions: async_sessionmaker, staff_id: str) -> Staff | None:
    async with sessions() as session:
        row = (await session.execute(select(staff_users).where(staff_users.c.id == staff_id))).first()
    return Staff(id=row.id, email=row.email, role=row.role) if row else None
