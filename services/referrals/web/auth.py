"""``POST /api/v1/auth/token``: email + password → signed, expiring staff bearer token."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import msgspec
from litestar import Request, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody

from services.referrals import identity
from shared.auth import issue_staff_token
from shared.openapi import RateLimited, errors


class Credentials(msgspec.Struct, kw_only=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class TokenOut(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str
    expires_in: int
    role: str


@post(
    "/api/v1/auth/token",
    status_code=200,
    summary="Exchange staff credentials for a bearer token",
    description="Rate-limited per client.",
    responses=errors(400, 401, 422, 429, 503),
    operation_class=RateLimited,
)
async def issue_token(request: Request, data: JSONBody[Credentials]) -> TokenOut:
    runtime = request.app.state.runtime
    try:
        staff = await identity.authenticate(runtime.sessions, email=data.email, password=data.password)
    except identity.BadCredentials:
        raise NotAuthorizedException("invalid email or password") from None
    ttl = timedelta(minutes=runtime.settings.staff_token_ttl_minutes)
    token = issue_staff_token(key=request.app.state.keyring, staff=staff, ttl=ttl)
    return TokenOut(access_token=token, token_type="bearer", expires_in=int(ttl.total_seconds()), role=staff.role)
