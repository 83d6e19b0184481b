"""The new-referral form's answers as carried from one step to the next (:class:`Intake`), read
from a posted form and turned into the API's body: the same validation as ``POST
/api/v1/referrals``, with the fields named as the form labels them."""

from __future__ import annotations

from datetime import date

import msgspec
from litestar.datastructures import FormMultiDict

from services.referrals.contact import NEXT_STEPS, PREFERRED_CONTACT
from services.referrals.intake import Client, ReferralDraft
from services.referrals.rules import Group
from shared.errors import InvalidInput

CONSENT_METHODS = {"verbal": "Verbal", "written": "Written", "electronic": "Electronic"}
# As many partners as POST /api/v1/referrals takes (services.referrals.intake.ReferralDraft).
MAX_PARTNERS = 20
# As many referrals as one form can propose: one per reason at most, and a form takes 20 reasons.
MAX_GROUPS = 20
# The largest form a step of the flow carries (a 4,000-character note, 20 reasons and 20
# partners come to a few KB) with room to spare; anything larger is refused unread (413).
MAX_FORM_BYTES = 64 * 1024
# The labels of the form's fields, to name the one at fault in an error from the service.
LABELS = {
    "client": "Client",
    "client.id": "Client",
    "client.name": "Name",
    "client.phone": "Phone",
    "client.email": "Email",
    "client.date_of_birth": "Date of birth",
    "client.preferred_contact": "Preferred contact",
    "client.language": "Language",
    "client.postal_code": "ZIP code",
    "note": "Observations",
    "next_step": "After a partner accepts",
}


class Intake(msgspec.Struct, kw_only=True):
    """The flow's answers so far, as carried from one step's form to the next."""

    # An existing client's record, or else the details of a new one.
    client_id: str = ""
    client_name: str = ""
    client_phone: str = ""
    client_email: str = ""
    client_date_of_birth: str = ""
    client_preferred_contact: str = ""
    client_postal_code: str = ""
    client_language: str = ""
    client_email_consent: bool = False
    next_step: str = "partner_contacts_client"
    reasons: list[str] = []
    note: str = ""
    consent_given: bool = False
    consent_method: str = ""
    consent_scope: list[str] = []
    consent_given_by: str = "client"
    # The chosen partners of each referral, in the therapist's order: one list per group of the
    # reasons (see Rules.groups), most urgent first.
    partners: list[list[str]] = []
    idempotency_key: str = ""

    @property
    def partner_ids(self) -> list[str]:
        """The first (or only) referral's chosen partners."""
        return self.partners[0] if self.partners else []

    @classmethod
    def from_form(cls, form: FormMultiDict) -> Intake:
        def one(name: str, limit: int = 200) -> str:
            return str(form.get(name) or "").strip()[:limit]

        def chosen(group: int) -> list[str]:
            ids_field, order_prefix = partner_fields(group)
            # Capped at the API's limit before anything else is done with them: the form is the
            # caller's, and a forged one may carry thousands.
            picked = list(dict.fromkeys(str(p) for p in form.getall(ids_field, [])[:MAX_PARTNERS]))
            # The therapist may renumber the partners; ties keep the ranked order.
            positions = {
                pid: (_number(form.get(f"{order_prefix}{pid}"), default=index), index)
                for index, pid in enumerate(picked)
            }
            return sorted(picked, key=positions.__getitem__)

        partners = [chosen(group) for group in range(MAX_GROUPS)]
        while partners and not partners[-1]:
            partners.pop()
        return cls(
            client_id=one("client_id", 36),
            client_name=one("client_name"),
            client_phone=one("client_phone", 40),
            client_email=one("client_email", 320),
            client_date_of_birth=one("client_date_of_birth", 20),
            client_preferred_contact=one("client_preferred_contact", 10),
            client_postal_code=one("client_postal_code", 20),
            client_language=one("client_language", 40),
            client_email_consent=form.get("client_email_consent") == "yes",
            next_step=one("next_step", 30) or "partner_contacts_client",
            reasons=list(dict.fromkeys(str(r) for r in form.getall("reasons", [])))[:20],
            note=str(form.get("note") or "")[:4000],
            consent_given=form.get("consent_given") == "yes",
            consent_method=one("consent_method", 20),
            consent_scope=[str(s) for s in form.getall("consent_scope", [])],
            consent_given_by=one("consent_given_by") or "client",
            partners=partners,
            idempotency_key=one("idempotency_key", 200),
        )

    def chosen_partners(self, groups: list[Group]) -> list[list[str] | None]:
        """The partners chosen for each referral, one list per group; each must have one."""
        for index, group in enumerate(groups):
            if index >= len(self.partners) or not self.partners[index]:
                which = f" for {', '.join(r.label for r in group.reasons)}" if len(groups) > 1 else ""
                raise InvalidInput(f"choose at least one partner{which}", field=partner_fields(index)[0])
        return [list(self.partners[index]) for index in range(len(groups))]

    def draft(self) -> ReferralDraft:
        """The API body this form amounts to (its partners aside: see :meth:`chosen_partners`);
        the same validation as ``POST /api/v1/referrals``."""
        if self.consent_method not in CONSENT_METHODS:
            raise InvalidInput("choose how the client gave consent", field="consent.method")
        if not self.consent_scope:
            raise InvalidInput("choose which kinds of partner the consent covers", field="consent.scope")
        if self.next_step not in NEXT_STEPS:
            raise InvalidInput("choose who makes the next call", field="next_step")
        try:
            return msgspec.convert(
                {
                    "client": msgspec.to_builtins(self.client()),
                    "next_step": self.next_step,
                    "consent": {
                        "given": self.consent_given,
                        "method": self.consent_method,
                        "scope": self.consent_scope,
                        "given_by": self.consent_given_by,
                    },
                    "reasons": self.reasons,
                    "note": self.note,
                },
                ReferralDraft,
            )
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc), field="form") from None

    def client(self) -> Client:
        """The referral's client as the API takes it: the chosen record, or a new one."""
        if self.client_id:
            return Client(id=self.client_id)
        try:
            born = date.fromisoformat(self.client_date_of_birth) if self.client_date_of_birth else None
        except ValueError:
            raise InvalidInput("give the date of birth as YYYY-MM-DD", field="client.date_of_birth") from None
        preferred = self.client_preferred_contact
        if preferred and preferred not in PREFERRED_CONTACT:
            raise InvalidInput("choose how the client prefers to be contacted", field="client.preferred_contact")
        return Client(
            name=self.client_name or None,
            phone=self.client_phone or None,
            email=self.client_email or None,
            date_of_birth=born,
            preferred_contact=preferred or None,  # type: ignore[arg-type]  # checked just above
            postal_code=self.client_postal_code or None,
            language=self.client_language or None,
            email_consent=self.client_email_consent,
        )


def partner_fields(group: int) -> tuple[str, str]:
    """The form fields that carry one referral's chosen partners and their order: the first
    referral's are ``partner_ids`` and ``order_<id>``, as when there is only one."""
    return ("partner_ids", "order_") if group == 0 else (f"partner_ids_{group}", f"order_{group}_")


def _number(value: object, *, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default
