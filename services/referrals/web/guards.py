"""Who may use a referrals route: staff whose account is still active, with the role it has now.

A staff token (bearer or login cookie) is signed and expires, but an admin may disable an account
or change its role before then; the referrals service holds the accounts, so it checks them on
every request rather than trusting the token's role until it expires."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from services.referrals import identity
from shared.auth import Role
from shared.web import LoginRequired, authenticate, for_programs


def staff(*roles: Role):
    """A guard admitting active staff whose current role is one of ``roles`` (any if none)."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        claimed = await authenticate(connection)
        current = await identity.current_user(connection.app.state.runtime.sessions, claimed.id)
        if current is None:
            page = not for_programs(connection.url.path)
            raise (LoginRequired if page else NotAuthorizedException)("this staff account is disabled")
        connection.scope["user"] = current
        if roles and current.role not in roles:
            raise PermissionDeniedException(f"this needs the {' or '.join(roles)} role")

    return guard
