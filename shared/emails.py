"""Email address syntax, the same for every service: the directory (partners' referral
addresses), referrals (staff accounts) and the notifier (every recipient). An address one of them
stores is one the notifier can send to. `email-validator` judges the syntax (RFC 5321/5322 as
mail servers apply it, no quoted or internationalised mailbox names, which the notifier's SMTP
does not send to); whether the domain takes mail is never looked up.

Plain addresses (``intake@baypt.example``) take a fast path that gives email-validator's own
answer for them in a tenth of its time: email-validator was a third of checking an import's row.
Everything the fast path is not sure of goes to email-validator, so refusals (and their words)
are always its own; ``tests/unit/test_email_fast_path.py`` checks that the two never disagree."""

from __future__ import annotations

import functools
import re

import email_validator
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DNS_LABEL_LENGTH_LIMIT,
    EMAIL_MAX_LENGTH,
    LOCAL_PART_MAX_LENGTH,
)


class InvalidEmail(ValueError):
    """Not an email address the notifier can send to; the message says why, in plain words."""


# An unquoted ASCII mailbox (RFC 5322 dot-atom) @ dot-separated ASCII host labels (letters, digits,
# inner hyphens), the last ending in a letter. Checked further by :func:`_plain_address`.
_ATEXT = r"[a-zA-Z0-9_!#$%&'*+/=?^`{|}~-]"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_TOP_LABEL = r"(?:[a-zA-Z0-9][a-zA-Z0-9-]*)?[a-zA-Z]"
_PLAIN = re.compile(rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:{_LABEL}\.)+{_TOP_LABEL})")
_CASE_INSENSITIVE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def _plain_address(address: str) -> str | None:
    """What email-validator normalises ``address`` to, when it is a plain address that it
    certainly accepts; None for anything else (email-validator then decides)."""
    # The length first: it bounds the pattern's work on a long text.
    if len(address) > EMAIL_MAX_LENGTH or (match := _PLAIN.fullmatch(address)) is None:
        return None
    local, domain = match.groups()
    # Left to email-validator: mailboxes it lower-cases (RFC 2142), long ones (refused in its
    # strict mode), labels with "--" (Punycode and the reserved "ab--" form), over-long labels and
    # special-use names (.local, .test…: read from the library at each call, as its own
    # test-environment switch reads them).
    if len(local) > LOCAL_PART_MAX_LENGTH or local.lower() in _CASE_INSENSITIVE_MAILBOXES or "--" in domain:
        return None
    domain = domain.lower()
    if max(map(len, domain.split("."))) > DNS_LABEL_LENGTH_LIMIT:
        return None
    dotted = "." + domain
    for name in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if dotted.endswith("." + name):  # the name itself or a name under it
            return None
    return f"{local}@{domain}"


# A pure function of its text, and costly for an address off the fast path (a millisecond): the
# notifier mails the same few often. A refused address raises and is not kept.
@functools.lru_cache(maxsize=4096)
def normalised_email(address: str) -> str:
    """``address`` with its domain lower-cased (the mailbox name is its owner's business), or
    :class:`InvalidEmail`."""
    plain = _plain_address(address)
    if plain is not None:
        return plain
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return checked.normalized
