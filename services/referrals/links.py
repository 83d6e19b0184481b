"""Signed partner links: each token names one offer and the nonce of one offering of it, expires
with it, and is good for one answer (single use is enforced by the offer's status, not by the
token; a link from an earlier offering by the nonce the offer holds now)."""

from __future__ import annotations

from datetime import datetime

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
