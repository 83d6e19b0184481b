"""The referrals service's admin tasks behind ``handoff user add|list|disable|enable|role``: each
builds the service's runtime for a command, runs one use case on the staff accounts and closes
it. Disabling an account or saving its role also revokes its tokens for the directory (see
:mod:`shared.revocation`); :class:`~services.referrals.identity.NotRevoked` says when Redis did
not answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.referrals import bootstrap, identity
from shared.auth import Role, Staff
from shared.config import Settings

T = TypeVar("T")


def run(settings: Settings, use: Callable[[bootstrap.Runtime], Awaitable[T]]) -> T:
    """Run ``use`` with a runtime built for a command, closed afterwards."""

    async def main() -> T:
        runtime = bootstrap.build(settings, use="cli")
        try:
            return await use(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def add_user(settings: Settings, *, email: str, role: Role, password: str) -> Staff:
    return run(settings, lambda runtime: identity.add_user(runtime.sessions, email=email, role=role, password=password))


def list_users(settings: Settings) -> list[identity.StaffAccount]:
    return run(settings, lambda runtime: identity.list_users(runtime.sessions))


def change_user(
    settings: Settings, *, email: str, role: Role | None = None, active: bool | None = None
) -> identity.StaffAccount:
    """Change an account's role and/or whether it may log in (see :func:`identity.change_user`)."""
    return run(
        settings,
        lambda runtime: identity.change_user(
            runtime.sessions,
            email=email,
            role=role,
            active=active,
            revocations=runtime.revocations,
        ),
    )


def sign_out_everywhere(settings: Settings, *, email: str) -> identity.StaffAccount:
    """End every sign-in of an account, on both services (see :func:`identity.sign_out_everywhere`)."""
    return run(
        settings,
        lambda runtime: identity.sign_out_everywhere(runtime.sessions, email=email, revocations=runtime.revocations),
    )
