"""Email content: a subject line plus one HTML and one plain-text Jinja2 template per kind, all
sharing one layout that names the clinic.

Templates see the fields of :class:`shared.messages.EmailContext`, the clinic's name and values
derived from those, nothing else (see :data:`TEMPLATE_VARIABLES`). Undefined names fail loudly
rather than rendering empty.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import jinja2

from shared import clinic_time
from shared.messages import EmailContext, EmailKind

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
    }
)

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


def environment(timezone: str = "UTC") -> jinja2.Environment:
    """The templates' environment: HTML escaped, plain text and subjects left as written; the
    clinic-time filters (:mod:`shared.clinic_time`) show instants in ``timezone``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(clinic_time.jinja_filters(timezone))
    return env


class Renderer:
    """Renders every kind of email for one clinic; deadlines are shown in its time zone."""

    def __init__(self, *, clinic_name: str, timezone: str) -> None:
        self.clinic_name = clinic_name
        self.timezone = ZoneInfo(timezone)
        self._env = environment(timezone)
        self._subjects: dict[str, jinja2.Template] = {k: self._env.from_string(s) for k, s in SUBJECTS.items()}

    def render(self, kind: str, context: EmailContext) -> RenderedEmail:
        if kind not in KINDS:
            raise CannotRender(f"unknown email kind {kind!r}")
        _check_link(kind, context.action_url)
        for name in ("manage_url", "inbox_url"):
            if getattr(context, name) and not getattr(context, name).startswith(("https://", "http://")):
                raise CannotRender(f"{kind}: {name} is not an http(s) URL")
        variables = self._variables(context)
        subject = _one_line(self._subjects[kind].render(variables))
        if context.reference:
            subject = f"{subject} — ref {context.reference}"
        variables["subject"] = subject
        return RenderedEmail(
            subject=subject,
            text=self._env.get_template(f"{kind}.txt").render(variables),
            html=self._env.get_template(f"{kind}.html").render(variables),
        )

    def _variables(self, context: EmailContext) -> dict[str, object]:
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


def _one_line(text: str) -> str:
    # A line break in a header would be refused (or worse, start a new header).
    return " ".join(text.split())
