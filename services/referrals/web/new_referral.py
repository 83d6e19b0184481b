"""The new-referral flow as a therapist uses it between two clients, in three server-rendered
steps that work without JavaScript:

1. ``GET /referrals/new``: the client (minimal), reasons grouped by kind with a filter, the note.
2. ``POST /referrals/new``: what the rules say (urgency, guidance; an emergency stops here with a
   full-page instruction), a warning on diagnostic wording, consent, ranked partners with why.
3. ``POST /referrals/new/send``: issues the referral (idempotent per form) and shows it.

Nothing is stored between steps: each step carries the previous ones' answers in the form.
"""

from __future__ import annotations

import uuid
from itertools import groupby

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from services.referrals.domain import diagnostic_wording
from services.referrals.intake import ReferralDraft, SuggestionQuery
from services.referrals.rules import Rules
from services.referrals.service import EmergencyStop, Referrals
from services.referrals.web.guards import staff
from services.referrals.web.rendering import page
from shared import categories
from shared.errors import DomainError, InvalidInput

CONSENT_METHODS = {"verbal": "Verbal", "written": "Written", "electronic": "Electronic"}
# As many partners as POST /api/v1/referrals takes (services.referrals.intake.ReferralDraft).
MAX_PARTNERS = 20
# The largest form a step of the flow carries (a 4,000-character note, 20 reasons and 20
# partners come to a few KB) with room to spare; anything larger is refused unread (413).
MAX_FORM_BYTES = 64 * 1024


class Intake(msgspec.Struct, kw_only=True):
    """The flow's answers so far, as carried from one step's form to the next."""

    client_name: str = ""
    client_postal_code: str = ""
    client_language: str = ""
    reasons: list[str] = []
    note: str = ""
    consent_given: bool = False
    consent_method: str = ""
    consent_scope: list[str] = []
    consent_given_by: str = "client"
    partner_ids: list[str] = []
    idempotency_key: str = ""

    @classmethod
    def from_form(cls, form: FormMultiDict) -> Intake:
        def one(name: str, limit: int = 200) -> str:
            return str(form.get(name) or "").strip()[:limit]

        # Capped at the API's limit before anything else is done with them: the form is the
        # caller's, and a forged one may carry thousands.
        chosen = list(dict.fromkeys(str(p) for p in form.getall("partner_ids", [])[:MAX_PARTNERS]))
        # The therapist may renumber the partners; ties keep the ranked order.
        positions = {pid: (_number(form.get(f"order_{pid}"), default=index), index) for index, pid in enumerate(chosen)}
        return cls(
            client_name=one("client_name"),
            client_postal_code=one("client_postal_code", 20),
            client_language=one("client_language", 40),
            reasons=list(dict.fromkeys(str(r) for r in form.getall("reasons", [])))[:20],
            note=str(form.get("note") or "")[:4000],
            consent_given=form.get("consent_given") == "yes",
            consent_method=one("consent_method", 20),
            consent_scope=[str(s) for s in form.getall("consent_scope", [])],
            consent_given_by=one("consent_given_by") or "client",
            partner_ids=sorted(chosen, key=positions.__getitem__),
            idempotency_key=one("idempotency_key", 200),
        )

    def draft(self) -> ReferralDraft:
        """The API body this form amounts to; the same validation as ``POST /api/v1/referrals``."""
        if self.consent_method not in CONSENT_METHODS:
            raise InvalidInput("choose how the client gave consent", field="consent.method")
        if not self.consent_scope:
            raise InvalidInput("choose which kinds of partner the consent covers", field="consent.scope")
        if not self.partner_ids:
            raise InvalidInput("choose at least one partner", field="partner_ids")
        try:
            return msgspec.convert(
                {
                    "client": {
                        "name": self.client_name,
                        "postal_code": self.client_postal_code or None,
                        "language": self.client_language or None,
                    },
                    "consent": {
                        "given": self.consent_given,
                        "method": self.consent_method,
                        "scope": self.consent_scope,
                        "given_by": self.consent_given_by,
                    },
                    "reasons": self.reasons,
                    "note": self.note,
                    "partner_ids": self.partner_ids,
                },
                ReferralDraft,
            )
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc), field="form") from None


class NewReferralFlow(Controller):
    path = "/referrals/new"
    guards = [staff("admin", "therapist")]
    request_max_body_size = MAX_FORM_BYTES
    include_in_schema = False

    @get("/")
    async def start(self, request: Request) -> Template:
        return _first_step(request, Intake())

    @post("/", status_code=200)
    async def review(self, request: Request, referrals: NamedDependency[Referrals]) -> Template:
        intake = Intake.from_form(await request.form())
        if not intake.client_name:
            return _first_step(
                request, intake, error="Give the client's name (it never leaves the clinic).", status_code=422
            )
        if not intake.reasons:
            return _first_step(request, intake, error="Choose at least one reason.", status_code=422)
        try:
            await referrals.assess(staff=request.user, reasons=intake.reasons)
        except EmergencyStop as stop:
            return _emergency(request, stop)
        except InvalidInput as error:
            return _first_step(request, intake, error=error.detail, status_code=422)
        return await _second_step(request, referrals, intake)

    @post("/send", status_code=303)
    async def send(self, request: Request, referrals: NamedDependency[Referrals]) -> Template | Redirect:
        intake = Intake.from_form(await request.form())
        try:
            record = await referrals.create(
                staff=request.user, draft=intake.draft(), idempotency_key=intake.idempotency_key or None
            )
        except EmergencyStop as stop:
            return _emergency(request, stop)
        except DomainError as error:
            return await _second_step(request, referrals, intake, error=error.detail, status_code=422)
        return Redirect(f"/referrals/{record.id}", status_code=303)


def _first_step(request: Request, intake: Intake, *, error: str = "", status_code: int = 200) -> Template:
    rules: Rules = request.app.state.runtime.rules
    ordered = sorted(rules.reasons.values(), key=lambda r: (r.urgency != "emergency", r.group, r.label))
    groups = [(group, list(items)) for group, items in groupby(ordered, key=lambda r: r.group)]
    return page(request, "staff/new.html", status_code=status_code, intake=intake, groups=groups, error=error)


async def _second_step(
    request: Request, referrals: Referrals, intake: Intake, *, error: str = "", status_code: int = 200
) -> Template:
    try:
        assessment = request.app.state.runtime.rules.assess(intake.reasons)
    except InvalidInput as problem:  # Only an edited form gets here: step 1 checked the reasons.
        return _first_step(request, intake, error=problem.detail, status_code=422)
    notes: list[str] = []
    postal_code = intake.client_postal_code or None
    try:
        suggestions = await referrals.suggest(
            query=SuggestionQuery(
                reasons=intake.reasons,
                postal_code=postal_code,
                language=intake.client_language or None,
                limit=8,
            )
        )
    except InvalidInput as problem:
        if problem.field != "postal_code":
            raise
        notes.append(f"{problem.detail}: partners are ranked without distance.")
        suggestions = await referrals.suggest(
            query=SuggestionQuery(
                reasons=intake.reasons,
                language=intake.client_language or None,
                limit=8,
            )
        )
    vocabulary = categories.load()
    kinds = {s.partner_id: vocabulary[s.category].kind for s in suggestions}
    chosen = intake.partner_ids or [s.partner_id for s in suggestions[:3]]
    return page(
        request,
        "staff/review.html",
        status_code=status_code,
        intake=intake,
        assessment=assessment,
        wording=diagnostic_wording(intake.note),
        suggestions=suggestions,
        kinds=kinds,
        chosen=chosen,
        category_labels={slug: c.label for slug, c in vocabulary.items()},
        needed_scopes=sorted(set(kinds.values())),
        methods=CONSENT_METHODS,
        notes=notes,
        error=error,
        idempotency_key=intake.idempotency_key or str(uuid.uuid4()),
    )


def _emergency(request: Request, stop: EmergencyStop) -> Template:
    rules: Rules = request.app.state.runtime.rules
    reasons = [rules.reasons[code] for code in stop.extra.get("reasons", []) if code in rules.reasons]
    suicide_risk = "988" in stop.extra.get("instruction", "")
    return page(
        request,
        "staff/emergency.html",
        instruction=stop.extra.get("instruction", ""),
        reasons=reasons,
        suicide_risk=suicide_risk,
    )


def _number(value: object, *, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default
