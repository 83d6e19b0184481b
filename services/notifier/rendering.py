"""Email content: a subject line plus one HTML and one plain-text Jinja2 template per kind, all
sharing one layout that names the clinic (emails to clients: their own layout, in the client's
language through the gettext catalogs of :mod:`shared.translations`).

Templates see the fields of :class:`shared.messages.EmailContext`, the clinic's name and contact
and values derived from those, nothing else (see :data:`TEMPLATE_VARIABLES`). Undefined names
fail loudly rather than rendering empty.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import jinja2
import phonenumbers

from shared import clinic_time, translations
from shared.messages import EmailContext, EmailKind, PartnerContact

# What happened first, the reference last: what a clinician scanning an inbox needs. The reference
# is appended by the renderer so that every subject ends the same way. One per EmailKind, each
# with its two templates (<kind>.txt, <kind>.html).
SUBJECTS: dict[EmailKind, str] = {
    "offer": "New {{ urgency_subject }} from {{ clinic }}",
    "offer_reminder": "Reminder: {{ urgency_subject }} from {{ clinic }} awaits your answer",
    "offer_withdrawn": "Withdrawn, no action needed: referral from {{ clinic }}",
    "offer_taken": "Taken by another practice, no action needed: referral from {{ clinic }}",
    "referral_cancelled": "Cancelled: referral from {{ clinic }}",
    "referral_accepted": "Accepted by {{ partner_name or 'the partner' }}",
    "referral_declined": "Declined by {{ partner_name or 'the partner' }}",
    "offer_expired": "No answer in time from {{ partner_name or 'the partner' }}",
    "no_partner_left": "Action needed: no partner accepted the referral",
    "outcome_reported": "Outcome reported by {{ partner_name or 'the partner' }}",
    "report_outcome": "Thank you: report the outcome of the referral from {{ clinic }}",
    "listing_manage_link": "Your link to update your listing with {{ clinic }}",
    "listing_confirm_request": "Please confirm your listing with {{ clinic }}",
    "listing_confirm_reminder": "Reminder: please confirm your listing with {{ clinic }}",
    "listing_reopen": "Are you taking new clients again? Your listing with {{ clinic }}",
    "listing_change_approved": "Approved: the changes to your listing with {{ clinic }}",
    "listing_change_rejected": "Not made: the changes to your listing with {{ clinic }}",
    "licence_expiring": "Licence expiring: {{ partner_name or 'a partner' }}",
    # To the client, in their language: in a template of their own, where pybabel finds them.
    "client_partner_details": '{% from "_client_subjects.txt" import client_partner_details with context %}'
    "{{ client_partner_details() }}",
    "client_referral_failed": '{% from "_client_subjects.txt" import client_referral_failed with context %}'
    "{{ client_referral_failed() }}",
}
KINDS: frozenset[str] = frozenset(SUBJECTS)

# urgency -> (words in the subject, sentence in the body). The urgencies are the scope rules'.
URGENCIES: dict[str, tuple[str, str]] = {
    "urgent": ("urgent referral", "Urgent: the client should be seen today."),
    "soon": ("referral (within a week)", "Soon: the client should be seen within a week."),
    "routine": ("routine referral", "Routine."),
}

# Every name a template may use. A unit test holds the templates to this list, so client data
# cannot creep into an email through a template.
TEMPLATE_VARIABLES = frozenset(
    {
        "clinic",
        "subject",
        "recipient_name",
        "partner_name",
        "reference",
        "urgency",
        "urgency_subject",
        "urgency_label",
        "action_url",
        "expires_at",
        "next_step",
        "expires_on",
        "manage_url",
        "inbox_url",
        "partners",
        "language",
        "clinic_phone",
        "clinic_phone_link",
        "clinic_address",
        "clinic_website",
    }
)
# The names gettext gives templates (jinja2.ext.i18n): functions, not data.
GETTEXT_NAMES = frozenset({"_", "gettext", "ngettext", "pgettext", "npgettext"})

# Emails to the client (who agreed to be emailed): their own layout, in their language, and
# never a name in the greeting (the recipient's name would be client data).
CLIENT_KINDS: frozenset[EmailKind] = frozenset({"client_partner_details", "client_referral_failed"})

TEMPLATES = Path(__file__).with_name("templates")


# Kinds whose whole point is the partner's link: sending one without it would be a dead end.
NEEDS_LINK: frozenset[EmailKind] = frozenset(
    {
        "offer",
        "offer_reminder",
        "report_outcome",
        "listing_manage_link",
        "listing_confirm_request",
        "listing_confirm_reminder",
        "listing_reopen",
        "listing_change_approved",
        "listing_change_rejected",
        "licence_expiring",
    }
)


class CannotRender(ValueError):
    """The ``SendEmail`` can never become an email: an unknown kind, or a missing or non-web
    link. Retrying would not help."""


class RenderedEmail(NamedTuple):
    subject: str
    text: str
    html: str


def environment(language: str = translations.DEFAULT, timezone: str = "UTC") -> jinja2.Environment:
    """The templates' environment in ``language`` (a code with a catalog, or English): HTML
    escaped, plain text and subjects left as written; the clinic-time filters
    (:mod:`shared.clinic_time`) show instants in ``timezone``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
        # The templates ship with the code: no need to look at each file's time at every render.
        auto_reload=False,
    )
    env.filters.update(clinic_time.jinja_filters(timezone))
    # New-style gettext: placeholders filled by name, and escaped like any other value.
    env.install_gettext_translations(translations.translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


class Renderer:
    """Renders every kind of email for one clinic; deadlines are shown in its time zone. The
    clinic's contact (phone, address, website: each optional) is what emails to clients give
    for questions."""

    def __init__(
        self,
        *,
        clinic_name: str,
        timezone: str,
        clinic_phone: str = "",
        clinic_address: str = "",
        clinic_website: str = "",
    ) -> None:
        self.clinic_name = clinic_name
        self.timezone = ZoneInfo(timezone)
        self.clinic_phone, self.clinic_phone_link = _phone_for_people(clinic_phone)
        self.clinic_address = clinic_address.strip()
        self.clinic_website = clinic_website.strip()
        self._envs: dict[str, jinja2.Environment] = {}
        self._subjects: dict[tuple[str, str], jinja2.Template] = {}

    def _env(self, language: str) -> jinja2.Environment:
        if language not in self._envs:
            self._envs[language] = environment(language, self.timezone.key)
        return self._envs[language]

    def _subject(self, kind: str, language: str) -> jinja2.Template:
        if (kind, language) not in self._subjects:
            self._subjects[kind, language] = self._env(language).from_string(SUBJECTS[kind])  # type: ignore[index]
        return self._subjects[kind, language]

    def render(self, kind: str, context: EmailContext) -> RenderedEmail:
        if kind not in KINDS:
            raise CannotRender(f"unknown email kind {kind!r}")
        _check_link(kind, context.action_url)
        for name in ("manage_url", "inbox_url"):
            if getattr(context, name) and not getattr(context, name).startswith(("https://", "http://")):
                raise CannotRender(f"{kind}: {name} is not an http(s) URL")
        # Only an email to a client is written in another language than English.
        language = translations.language(context.language) if kind in CLIENT_KINDS else translations.DEFAULT
        variables = self._variables(context, language=language)
        subject = _one_line(self._subject(kind, language).render(variables))
        if context.reference:
            subject = f"{subject} — ref {context.reference}"
        variables["subject"] = subject
        env = self._env(language)
        return RenderedEmail(
            subject=subject,
            text=env.get_template(f"{kind}.txt").render(variables),
            html=env.get_template(f"{kind}.html").render(variables),
        )

    def _variables(self, context: EmailContext, *, language: str) -> dict:
        in_subject, label = URGENCIES.get(context.urgency, ("referral", ""))
        return {
            "clinic": self.clinic_name,
            "recipient_name": context.recipient_name,
            "partner_name": context.partner_name,
            "reference": context.reference,
            "urgency": context.urgency,
            "urgency_subject": in_subject,
            "urgency_label": label,
            "action_url": context.action_url,
            # An instant; the templates show it with the clinic_time filter, as every page does.
            "expires_at": context.expires_at,
            "next_step": context.next_step,
            "expires_on": self._day(context.expires_at),
            "manage_url": context.manage_url,
            "inbox_url": context.inbox_url,
            "partners": [_partner(p) for p in context.partners],
            "language": language,
            "clinic_phone": self.clinic_phone,
            "clinic_phone_link": self.clinic_phone_link,
            "clinic_address": self.clinic_address,
            "clinic_website": _web_link(self.clinic_website) or self.clinic_website,
        }

    def _day(self, moment: datetime | None) -> str:
        """E.g. "Tuesday, May 12, 2026": a day, such as a licence's expiry, given as its midnight UTC."""
        if moment is None:
            return ""
        return f"{moment:%A, %B} {moment.day}, {moment:%Y}"


def _check_link(kind: str, url: str) -> None:
    # Autoescaping stops markup, not a "javascript:" href: only web links go into a button.
    if url and not url.startswith(("https://", "http://")):
        raise CannotRender(f"{kind}: action_url is not an http(s) URL")
    if not url and kind in NEEDS_LINK:
        raise CannotRender(f"{kind}: action_url is required")


class PartnerLines(NamedTuple):
    """A partner as an email to a client shows it: each line "" when unknown (and then left out)."""

    name: str
    credentials: str
    practice: str
    phone: str
    phone_link: str
    address: str
    hours: str
    website: str
    website_link: str
    telehealth: bool


def _partner(partner: PartnerContact) -> PartnerLines:
    phone, phone_link = _phone_for_people(partner.phone)
    address = partner.address
    where = ""
    if address is not None:
        street = ", ".join(part for part in (address.line1, address.line2, address.city) if part.strip())
        region = " ".join(part for part in (address.state, address.postal_code) if part.strip())
        where = ", ".join(part for part in (street, region) if part)
    return PartnerLines(
        name=partner.name,
        credentials=partner.credentials,
        practice=partner.practice if partner.practice != partner.name else "",
        phone=phone,
        # The producer's E.164 when it is one; else what the number reads as here.
        phone_link=partner.phone_link if _E164.fullmatch(partner.phone_link) else phone_link,
        address=where,
        hours=partner.hours.strip(),
        website=partner.website.strip(),
        website_link=_web_link(partner.website),
        telehealth=partner.telehealth,
    )


_E164 = re.compile(r"\+[1-9]\d{6,14}")
# Numbers without "+" are read as North American: the clinic and its partners are local.
_PHONE_REGION = "US"


def _phone_for_people(phone: str) -> tuple[str, str]:
    """A phone number as a person reads it (``(727) 555-0199`` at home, international abroad) and
    as a ``tel:`` link (E.164); a number that does not parse is shown as written, with no link."""
    phone = phone.strip()
    if not phone:
        return "", ""
    try:
        number = phonenumbers.parse(phone, _PHONE_REGION)
    except phonenumbers.NumberParseException:
        return phone, ""
    if not phonenumbers.is_valid_number(number):
        return phone, ""
    local = phonenumbers.region_code_for_number(number) == _PHONE_REGION
    style = phonenumbers.PhoneNumberFormat.NATIONAL if local else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return (
        phonenumbers.format_number(number, style),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
    )


def _web_link(url: str) -> str:
    """``url`` when it is a web link (a partner's website without a scheme gains https://); ""
    for anything else, which is then shown as text, never as a link."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return ""
    if url.startswith(("https://", "http://")):
        return url
    if ":" in url.split("/")[0] or "." not in url.split("/")[0]:
        return ""
    return f"https://{url}"


def _one_line(text: str) -> str:
    # A line break in a header would be refused (or worse, start a new header).
    return " ".join(text.split())
