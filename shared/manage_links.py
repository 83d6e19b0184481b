"""Signed manage links (``/manage/{token}`` on the directory): each names one partner, expires,
and serves one purpose only (its own audience, so it can never stand in for a staff token or an
offer link). Defined here, beside the other links, so that any service may put a partner's manage
link in its emails; only the directory reads them.

Single use, per submission: a token's ``jti`` is recorded when a form posted with it is acted on,
and that token then only shows the page; each answer page carries a fresh token (same expiry),
so a partner may confirm, then update, then update again within the link's lifetime, while a
replayed or double-submitted form is refused."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from shared import auth
from shared.keys import Keyring

AUDIENCE = "handoff:manage"
PURPOSE = "manage"
# Long enough to outlast a busy week and the confirmation cycle's reminder; every email sends a
# new one.
LIFETIME = timedelta(days=14)


class ManageClaims(NamedTuple):
    partner_id: str
    jti: str
    expires_at: datetime


def issue(*, key: str | Keyring, partner_id: str, expires_at: datetime) -> str:
    """A fresh manage link token for ``partner_id`` (a new ``jti``), valid until ``expires_at``."""
    claims = {"pid": partner_id, "p": PURPOSE, "jti": uuid.uuid4().hex}
    return auth.sign(claims, key=key, audience=AUDIENCE, expires_at=expires_at)


def read(token: str, *, key: str | Keyring) -> ManageClaims:
    """The partner, token id and expiry a manage token names; :class:`shared.auth.InvalidToken`
    ("invalid" or "expired") when it is tampered with, expired or made for something else."""
    claims = auth.verify(token, key=key, audience=AUDIENCE)
    pid, jti, exp = claims.get("pid"), claims.get("jti"), claims.get("exp")
    if claims.get("p") != PURPOSE or not isinstance(pid, str) or not isinstance(jti, str):
        raise auth.InvalidToken("invalid")
    if not isinstance(exp, int | float):
        raise auth.InvalidToken("invalid")
    return ManageClaims(partner_id=pid, jti=jti, expires_at=auth.EPOCH + timedelta(seconds=exp))
