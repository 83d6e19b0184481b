"""Signed partner links: each token names one offer and the nonce of one offering of it, expires
with it, and is good for one answer (single use is enforced by the offer's status, not by the
token; a link from an earlier offering by the nonce the offer holds now)."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared import auth
from shared.keys import Keyring

AUDIENCE = "handoff:respond"


def issue(*, key: str | Keyring, offer_id: str, expires_at: datetime, purpose: str = "answer", nonce: str = "") -> str:
    claims = {"oid": offer_id, "p": purpose, **({"n": nonce} if nonce else {})}
    return auth.sign(claims, key=key, audience=AUDIENCE, expires_at=expires_at)


def read(token: str, *, key: str | Keyring, purpose: str = "answer") -> tuple[str, str]:
    """The offer id and offering nonce the token names ("" for a link made before offerings had
    nonces); :class:`shared.auth.InvalidToken` when it is tampered, expired, or made for another
    purpose."""
    claims = auth.verify(token, key=key, audience=AUDIENCE)
    nonce = claims.get("n", "")
    if claims.get("p") != purpose or not isinstance(claims.get("oid"), str) or not isinstance(nonce, str):
        raise auth.InvalidToken("invalid")
    return claims["oid"], nonce


def read_report(token: str, *, key: str | Keyring) -> tuple[str, str]:
    """The offer id and nonce of an outcome-report link. Single use comes from the nonce: the
    offer keeps only the newest link's, and clears it when a report is made."""
    claims = auth.verify(token, key=key, audience=AUDIENCE)
    if claims.get("p") != "report" or not isinstance(claims.get("oid"), str) or not isinstance(claims.get("n"), str):
        raise auth.InvalidToken("invalid")
    return claims["oid"], claims["n"]


# ------------------------------------------------------------------ partner inbox links

# The partner inbox (/inbox/{token}): one link per partner email address, never per offer. Its own
# audience, so it can stand in for no answer link, manage link or staff token, and the reverse.
INBOX_AUDIENCE = "handoff:inbox"
INBOX_PURPOSE = "inbox"
# Long-lived, since the admin can revoke it, and every email to the partner carries a fresh one.
INBOX_LIFETIME = timedelta(days=180)


def issue_inbox(*, key: str | Keyring, email: str, generation: int, expires_at: datetime) -> str:
    """An inbox link for the partners whose referral address is ``email``, of that address's
    current ``generation`` (revoking its links bumps it, see storage.inbox_store)."""
    claims = {"em": email.strip().lower(), "g": generation, "p": INBOX_PURPOSE}
    return auth.sign(claims, key=key, audience=INBOX_AUDIENCE, expires_at=expires_at)


def read_inbox(token: str, *, key: str | Keyring) -> tuple[str, int]:
    """The email address and generation an inbox link names; :class:`shared.auth.InvalidToken`
    ("invalid" or "expired") when it is tampered with, expired or made for something else."""
    claims = auth.verify(token, key=key, audience=INBOX_AUDIENCE)
    email, generation = claims.get("em"), claims.get("g")
    if claims.get("p") != INBOX_PURPOSE or not isinstance(email, str) or not email:
        raise auth.InvalidToken("invalid")
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise auth.InvalidToken("invalid")
    return email, generation
