"""CSRF protection for every form of both services: Litestar's double-submit cookie, signed with
the keyring's signing key and checked against every key it keeps, so that rotating
``HANDOFF_SECRET_KEY`` (see :mod:`shared.keys`) does not refuse the forms of everyone signed in.
Litestar's own ``csrf_config`` takes one secret; this is its middleware with that one difference."""

from __future__ import annotations

from collections.abc import Sequence
from hmac import compare_digest

from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, CSRFMiddleware, generate_csrf_hash
from litestar.types import ASGIApp

from shared.keys import Keyring


class KeyringCSRFMiddleware(CSRFMiddleware):
    def __init__(self, app: ASGIApp, config: CSRFConfig, keyring: Keyring) -> None:
        super().__init__(app, config)
        self._keys = keyring.keys

    # Litestar 2.25's one place that checks a token's signature (with config.secret alone).
    def _decode_csrf_token(self, token: str) -> str | None:
        if len(token) < CSRF_SECRET_LENGTH + 1:
            return None
        secret, signature = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
        for key in self._keys:
            if compare_digest(signature, generate_csrf_hash(token=secret, secret=key)):
                return secret
        return None


def csrf(keyring: Keyring, *, exclude: Sequence[str]) -> DefineMiddleware:
    """The CSRF middleware of an app: an HttpOnly, SameSite=Strict cookie; paths under ``exclude``
    (and routes with ``opt={"exclude_from_csrf": True}``) are not checked."""
    config = CSRFConfig(secret=keyring.signing, exclude=list(exclude), cookie_httponly=True, cookie_samesite="strict")
    return DefineMiddleware(KeyringCSRFMiddleware, config=config, keyring=keyring)
