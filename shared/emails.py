"""Email address syntax, the same for every service: the directory (partners' referral
addresses), referrals (staff accounts) and the notifier (every recipient). An address one of them
stores is one the notifier can send to. `email-validator` judges the syntax (RFC 5321/5322 as
mail servers apply it, no quoted or internationalised mailbox names, which the notifier's SMTP
does not send to); whether the domain takes mail is never looked up."""

from __future__ import annotations

import functools

from email_validator import EmailNotValidError, validate_email


class InvalidEmail(ValueError):
    """Not an email address the notifier can send to; the message says why, in plain words."""


# A pure function of its text, and costly (a millisecond): an import checks each address twice
# (to find the partner, then as the domain stores it) and the notifier mails the same few often.
# A refused address raises and is not kept.
@functools.lru_cache(maxsize=4096)
def normalised_email(address: str) -> str:
    """``address`` with its domain lower-cased (the mailbox name is its owner's business), or
    :class:`InvalidEmail`."""
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    return checked.normalized
