"""The keys Handoff signs with, and rotating them without signing anyone out.

``HANDOFF_SECRET_KEY`` signs everything new: staff tokens and login cookies, CSRF tokens and
partner links. ``HANDOFF_SECRET_KEYS`` lists earlier keys (comma separated), still accepted for
what they signed until that expires: staff tokens within ``HANDOFF_STAFF_TOKEN_TTL_MINUTES``,
partner links with their offers. To rotate: make the new key ``HANDOFF_SECRET_KEY`` and add the
old one to ``HANDOFF_SECRET_KEYS``; once the longest-lived link has expired, drop it.

A token names its key by ``kid``, a short digest of the key (the key cannot be recovered from
it); a token from before ``kid`` existed is tried against every key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def key_id(key: str) -> str:
    """The ``kid`` a token signed with ``key`` carries."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Keyring:
    """The signing key and every key a signature may still be checked against."""

    def __init__(self, signing: str, *, previous: Sequence[str] = ()) -> None:
        if not signing:
            raise ValueError("a keyring needs a signing key")
        self.signing = signing
        self.signing_id = key_id(signing)
        self.keys: tuple[str, ...] = tuple(dict.fromkeys([signing, *(key for key in previous if key)]))
        self._by_id = {key_id(key): key for key in self.keys}

    @classmethod
    def of(cls, key: str | Keyring) -> Keyring:
        """``key`` itself, or a keyring of that one key."""
        return key if isinstance(key, Keyring) else cls(key)

    def verifying(self, kid: object) -> tuple[str, ...]:
        """The keys a signature naming ``kid`` may be checked against: that key (none for a key
        no longer kept), or every key when the token names none."""
        if kid is None:
            return self.keys
        found = self._by_id.get(kid) if isinstance(kid, str) else None
        return (found,) if found else ()
