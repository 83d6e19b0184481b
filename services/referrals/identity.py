"""Staff accounts: argon2 password hashes, roles, and the email + password → token exchange.

Disabling an account or changing its role also revokes the tokens it already holds, for the
directory (:mod:`shared.revocation`); this service checks the accounts table on every request."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime

import anyio.to_thread
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.exceptions import RedisError
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.referrals.passwords import MIN_LENGTH as MIN_PASSWORD_LENGTH
from services.referrals.passwords import check_password
from services.referrals.storage import staff_users
from shared.auth import ROLES, Staff
from shared.emails import InvalidEmail, normalised_email
from shared.errors import Conflict, InvalidInput, NotFound
from shared.revocation import Revocations

# argon2-cffi's default parameters (RFC 9106's low-memory profile). The test suite swaps in a cheap
# hasher here (tests/conftest.py); nothing else should.
PASSWORD_HASHER = PasswordHasher()
__all__ = ["MIN_PASSWORD_LENGTH"]  # re-exported for the staff admin page


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verified against when the email is unknown, so a wrong email costs as much time as a wrong
    password and response times do not reveal which accounts exist. Hashed with the hasher in
    use, so it costs what a real account's hash costs."""
    return hasher.hash("not-a-real-password-0000")


_dummy_hash(PASSWORD_HASHER)  # at import, not in the first login with an unknown email


class BadCredentials(Exception):
    """Email unknown, account disabled or password wrong (deliberately not saying which)."""


def staff_email(email: str) -> str:
    """A staff account's email as stored and looked up: valid (:mod:`shared.emails`), lower case."""
    try:
        return normalised_email(email.strip()).lower()
    except InvalidEmail as exc:
        raise InvalidInput(f"{email.strip()!r} is not an email address: {exc}", field="email") from None


async def add_user(sessions: async_sessionmaker, *, email: str, role: str, password: str) -> Staff:
    """Create a staff account. Argon2 hashing runs off the event loop (it is deliberately slow)."""
    email = staff_email(email)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    check_password(password, role=role, email=email)
    password_hash = await anyio.to_thread.run_sync(PASSWORD_HASHER.hash, password)
    staff = Staff(id=str(uuid.uuid4()), email=email, role=role)
    try:
        async with sessions.begin() as session:
            await session.execute(
                insert(staff_users).values(
                    id=staff.id,
                    email=email,
                    role=role,
                    password_hash=password_hash,
                    active=True,
                    created_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        raise Conflict(f"a staff account for {email} already exists", field="email") from None
    return staff


async def authenticate(sessions: async_sessionmaker, *, email: str, password: str) -> Staff:
    """The staff member with these credentials, or :class:`BadCredentials`."""
    async with sessions() as session:
        row = (await session.execute(select(staff_users).where(staff_users.c.email == email.strip().lower()))).first()
    stored = row.password_hash if row is not None and row.active else _dummy_hash(PASSWORD_HASHER)
    try:
        await anyio.to_thread.run_sync(PASSWORD_HASHER.verify, stored, password)
    except (VerificationError, InvalidHashError):
        raise BadCredentials() from None
    if row is None or not row.active:
        raise BadCredentials()
    return Staff(id=row.id, email=row.email, role=row.role)


async def get_user(sessions: async_sessionmaker, staff_id: str) -> Staff | None:
    async with sessions() as session:
        row = (await session.execute(select(staff_users).where(staff_users.c.id == staff_id))).first()
    return Staff(id=row.id, email=row.email, role=row.role) if row else None


async def current_user(sessions: async_sessionmaker, staff_id: str) -> Staff | None:
    """The staff member as the database has them now: None when the account is gone or disabled.
    A token outlives a change of role or a disabled account; this is what is checked per request."""
    async with sessions() as session:
        row = (await session.execute(_CURRENT_USER, {"staff_id": staff_id})).first()
    return Staff(id=row.id, email=row.email, role=row.role) if row is not None and row.active else None


# Built once: every staff request asks it (see services.referrals.storage.referral_store).
_CURRENT_USER = select(staff_users.c.id, staff_users.c.email, staff_users.c.role, staff_users.c.active).where(
    staff_users.c.id == bindparam("staff_id")
)


class StaffAccount(msgspec.Struct, kw_only=True, frozen=True):
    """A staff account as an admin manages it (never the password hash)."""

    id: str
    email: str
    role: str
    active: bool
    created_at: datetime


async def list_users(sessions: async_sessionmaker) -> list[StaffAccount]:
    async with sessions() as session:
        rows = (
            await session.execute(
                select(
                    staff_users.c.id,
                    staff_users.c.email,
                    staff_users.c.role,
                    staff_users.c.active,
                    staff_users.c.created_at,
                ).order_by(staff_users.c.email)
            )
        ).all()
    return [StaffAccount(id=r.id, email=r.email, role=r.role, active=r.active, created_at=r.created_at) for r in rows]


class NotRevoked(Exception):
    """A change was saved, but Redis did not answer, so the directory still accepts the tokens
    the account held before it. Making the same change again records the revocation."""

    def __init__(
        self, account: StaffAccount, *, valid_until: datetime, cause: Exception, where: str = "in the directory"
    ) -> None:
        self.account = account
        self.valid_until = valid_until
        super().__init__(
            f"{account.email}'s sign-ins from before this change keep working {where} until "
            f"{valid_until:%Y-%m-%d %H:%M} UTC at the latest: Redis did not answer ({type(cause).__name__}), "
            "so they could not be ended"
        )


async def change_user(
    sessions: async_sessionmaker,
    *,
    email: str,
    role: str | None = None,
    active: bool | None = None,
    revocations: Revocations,
) -> StaffAccount:
    """Change an account's role and/or whether it may log in. The last active admin can be
    neither disabled nor demoted: someone must always be able to manage accounts.

    Every change but enabling an account with its role unchanged then revokes the account's
    tokens for the directory: disabling (again), or saving a role (even the same one, which is
    how to retry after :class:`NotRevoked`, raised once the change is saved)."""
    email = staff_email(email)
    if role is not None and role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", field="role")
    async with sessions.begin() as session:
        row = (await session.execute(select(staff_users).where(staff_users.c.email == email))).first()
        if row is None:
            raise NotFound(f"no staff account for {email}", field="email")
        new_role = row.role if role is None else role
        new_active = row.active if active is None else active
        if row.role == "admin" and row.active and (new_role != "admin" or not new_active):
            admins = (
                await session.execute(
                    select(func.count())
                    .select_from(staff_users)
                    .where(staff_users.c.role == "admin", staff_users.c.active.is_(True))
                )
            ).scalar_one()
            if admins <= 1:
                raise Conflict(f"{email} is the last active admin", field="email")
        await session.execute(
            update(staff_users).where(staff_users.c.id == row.id).values(role=new_role, active=new_active)
        )
    account = StaffAccount(id=row.id, email=row.email, role=new_role, active=new_active, created_at=row.created_at)
    # Recorded after the commit, so every token issued under the old role or state is older
    # than the revocation (a login in between gets the new role, and is merely refused once).
    if active is not True or new_role != row.role:
        now = datetime.now(UTC)
        try:
            await revocations.revoke(row.id, now=now)
        except (RedisError, OSError) as exc:
            raise NotRevoked(account, valid_until=now + revocations.token_ttl, cause=exc) from exc
    return account


async def sign_out_everywhere(sessions: async_sessionmaker, *, email: str, revocations: Revocations) -> StaffAccount:
    """End every sign-in of an account on both services (every token it holds now); it may sign
    in again at once. :class:`NotRevoked` when Redis did not answer."""
    email = staff_email(email)
    account = next((a for a in await list_users(sessions) if a.email == email), None)
    if account is None:
        raise NotFound(f"no staff account for {email}", field="email")
    now = datetime.now(UTC)
    try:
        await revocations.revoke(account.id, now=now)
    except (RedisError, OSError) as exc:
        raise NotRevoked(account, valid_until=now + revocations.token_ttl, cause=exc, where="on both services") from exc
    return account
