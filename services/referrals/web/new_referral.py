"""The new-referral flow as a therapist uses it between two clients, in three server-rendered
steps that work without JavaScript:

1. ``GET /referrals/new``: the client (an existing one found by name, date of birth or phone, or a
   new one with their contact details, preferred contact and language), reasons grouped by kind
   with a filter, the note (refused if it identifies the client: partners read it before accepting).
2. ``POST /referrals/new``: what the rules say (urgency, guidance; an emergency stops here with a
   full-page instruction, and so does advice alone, which needs no partner), a warning on
   diagnostic wording, consent, ranked partners with why. Reasons that need different kinds of
   partner are proposed as one referral per group, most urgent first, each with its partners; and
   who makes the next call once a partner accepts.
3. ``POST /referrals/new/send``: issues the referral(s) together under the one consent
   (idempotent per form) and shows the most urgent one.

Nothing is stored between steps: each step carries the previous ones' answers in the form.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import groupby

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from services.referrals.contact import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    NEXT_STEPS,
    PREFERRED_CONTACT,
    display_phone,
    language_name,
)
from services.referrals.domain import diagnostic_wording
from services.referrals.identifiers import check_note
from services.referrals.intake import SuggestionQuery
from services.referrals.records import ClientRecord, Suggestion
from services.referrals.rules import Group, Rules
from services.referrals.service import AdviceOnly, EmergencyStop, Referrals
from services.referrals.web.guards import staff
from services.referrals.web.referral_form import (
    CONSENT_METHODS,
    LABELS,
    MAX_FORM_BYTES,
    Intake,
    partner_fields,
)
from services.referrals.web.rendering import page
from shared import categories
from shared.errors import DomainError, InvalidInput


class NewReferralFlow(Controller):
    path = "/referrals/new"
    guards = [staff("admin", "therapist")]
    request_max_body_size = MAX_FORM_BYTES
    include_in_schema = False

    @get("/")
    async def start(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        client_id: FromQuery[str] = "",
        client_q: FromQuery[str] = "",
    ) -> Template:
        """Step 1; ``client_q`` finds existing clients to choose from, ``client_id`` chooses one."""
        intake = Intake(client_id=client_id.strip()[:36])
        if intake.client_id:
            try:
                chosen = await referrals.preview_client(staff=request.user, client=intake.client())
            except DomainError as error:
                return _first_step(request, Intake(), error=_said(error), status_code=404)
            return _first_step(request, intake, chosen=chosen)
        query = " ".join(client_q.split())[:100]
        if not query:
            return _first_step(request, intake)
        try:
            found = await referrals.find_clients(staff=request.user, q=query)
        except InvalidInput as error:
            return _first_step(request, intake, client_q=query, error=error.detail, status_code=422)
        return _first_step(request, intake, client_q=query, found=found)

    @post("/", status_code=200)
    async def review(self, request: Request, referrals: NamedDependency[Referrals]) -> Template:
        intake = Intake.from_form(await request.form())
        if not intake.client_id and not intake.client_name:
            return _first_step(
                request, intake, error="Give the client's name, or find an existing client.", status_code=422
            )
        if not intake.reasons:
            return _first_step(request, intake, error="Choose at least one reason.", status_code=422)
        try:
            # First, before anything about the client can stop the page: an emergency or advice
            # is shown at once (and recorded in the audit log).
            await referrals.assess(staff=request.user, reasons=intake.reasons)
        except EmergencyStop as stop:
            return _emergency(request, stop)
        except AdviceOnly as stop:
            return await _advice_only(request, referrals, intake, stop)
        except InvalidInput as error:
            return _first_step(request, intake, error=_said(error), status_code=422)
        try:
            chosen = await referrals.preview_client(staff=request.user, client=intake.client())
        except DomainError as error:
            return await _client_problem(request, referrals, intake, error)
        # Step 1 shows a client as chosen only when it is an existing record, not a new one's preview.
        existing = chosen if intake.client_id else None
        try:
            check_note(intake.note, client_name=chosen.name, today=referrals.now().date())
        except InvalidInput as error:
            return _first_step(request, intake, chosen=existing, error=_said(error), status_code=422)
        return await _second_step(request, referrals, intake, client=chosen)

    @post("/send", status_code=303)
    async def send(self, request: Request, referrals: NamedDependency[Referrals]) -> Template | Redirect:
        intake = Intake.from_form(await request.form())
        rules: Rules = request.app.state.runtime.rules
        try:
            records = await referrals.create_together(
                staff=request.user,
                draft=intake.draft(),
                partner_ids=intake.chosen_partners(rules.groups(intake.reasons)),
                idempotency_key=intake.idempotency_key or None,
            )
        except EmergencyStop as stop:
            return _emergency(request, stop)
        except AdviceOnly as stop:
            return await _advice_only(request, referrals, intake, stop)
        except DomainError as error:
            if error.field in ("client", "client.id") or (error.field or "").startswith("client."):
                if error.field == "client" and intake.next_step == "partner_contacts_client":
                    # No way to reach the client: fixed on either step, the next step is chosen here.
                    return await _second_step(request, referrals, intake, error=_said(error), status_code=422)
                return await _client_problem(request, referrals, intake, error)
            return await _second_step(request, referrals, intake, error=_said(error), status_code=422)
        return Redirect(f"/referrals/{records[0].id}", status_code=303)


def _first_step(
    request: Request,
    intake: Intake,
    *,
    error: str = "",
    status_code: int = 200,
    chosen: ClientRecord | None = None,
    client_q: str = "",
    found: list[ClientRecord] | None = None,
) -> Template:
    rules: Rules = request.app.state.runtime.rules
    ordered = sorted(rules.reasons.values(), key=lambda r: (r.urgency != "emergency", r.group, r.label))
    groups = [(group, list(items)) for group, items in groupby(ordered, key=lambda r: r.group)]
    return page(
        request,
        "staff/new.html",
        status_code=status_code,
        intake=intake,
        groups=groups,
        error=error,
        chosen=chosen,
        client_q=client_q,
        found=found,
        languages=LANGUAGES,
        preferred_contact=PREFERRED_CONTACT,
        display_phone=display_phone,
    )


async def _client_problem(request: Request, referrals: Referrals, intake: Intake, error: DomainError) -> Template:
    """Step 1 again, saying what is wrong with the client, everything typed kept."""
    chosen = None
    if intake.client_id and error.field != "client.id":
        chosen = await referrals.preview_client(staff=request.user, client=intake.client())
    elif error.field == "client.id":
        intake = msgspec.structs.replace(intake, client_id="")
    status_code = 404 if error.field == "client.id" else 422
    return _first_step(request, intake, chosen=chosen, error=_said(error), status_code=status_code)


def _said(error: DomainError) -> str:
    """The service's error as the form says it: the field's label first."""
    label = LABELS.get(error.field or "")
    return f"{label}: {error.detail}" if label else error.detail


@dataclass
class Proposed:
    """One referral the page proposes: a group of the reasons and the partners suggested for it,
    under the form fields that carry its choice."""

    group: Group
    suggestions: list[Suggestion]
    chosen: list[str]
    ids_field: str
    order_prefix: str


async def _second_step(
    request: Request,
    referrals: Referrals,
    intake: Intake,
    *,
    error: str = "",
    status_code: int = 200,
    client: ClientRecord | None = None,
) -> Template:
    if client is None:
        try:
            client = await referrals.preview_client(staff=request.user, client=intake.client())
        except DomainError as problem:
            return await _client_problem(request, referrals, intake, problem)
    try:
        assessment = request.app.state.runtime.rules.assess(intake.reasons)
    except InvalidInput as problem:  # Only an edited form gets here: step 1 checked the reasons.
        return _first_step(request, intake, error=problem.detail, status_code=422)
    if assessment.emergencies or not assessment.groups:  # An edited form again: step 1 stopped these.
        return _first_step(request, intake, error="These reasons need no referral: start again.", status_code=422)
    notes: list[str] = []
    proposed = []
    for index, group in enumerate(assessment.groups):
        suggestions = await _suggestions(referrals, client, group, notes)
        ids_field, order_prefix = partner_fields(index)
        chosen = intake.partners[index] if index < len(intake.partners) else []
        proposed.append(
            Proposed(group, suggestions, chosen or [s.partner_id for s in suggestions[:3]], ids_field, order_prefix)
        )
    vocabulary = categories.load()
    kinds = {s.partner_id: vocabulary[s.category].kind for p in proposed for s in p.suggestions}
    return page(
        request,
        "staff/review.html",
        status_code=status_code,
        intake=intake,
        assessment=assessment,
        proposed=proposed,
        reporting_duties=request.app.state.settings.clinic_reporting_duties,
        wording=diagnostic_wording(intake.note),
        kinds=kinds,
        category_labels={slug: c.label for slug, c in vocabulary.items()},
        needed_scopes=sorted(set(kinds.values())),
        methods=CONSENT_METHODS,
        notes=list(dict.fromkeys(notes)),
        error=error,
        idempotency_key=intake.idempotency_key or str(uuid.uuid4()),
        client=client,
        next_steps=NEXT_STEPS,
    )


async def _suggestions(referrals: Referrals, client: ClientRecord, group: Group, notes: list[str]) -> list[Suggestion]:
    """The partners suggested for one group of the reasons; a ZIP the service does not know is
    noted and the partners ranked without distance."""
    query = SuggestionQuery(
        reasons=group.codes,
        postal_code=client.postal_code or None,
        # English is every partner's working language here (see issuing.matching_language).
        language=language_name(client.language) if client.language != DEFAULT_LANGUAGE else None,
        limit=8,
    )
    try:
        return await referrals.suggest(query=query)
    except InvalidInput as problem:
        if problem.field != "postal_code":
            raise
        notes.append(f"{problem.detail}: partners are ranked without distance.")
        return await referrals.suggest(query=msgspec.structs.replace(query, postal_code=None))


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


async def _advice_only(request: Request, referrals: Referrals, intake: Intake, stop: AdviceOnly) -> Template:
    """Advice alone: what to share now (in the client's language), the state's reporting duties,
    and no referral."""
    rules: Rules = request.app.state.runtime.rules
    reasons = [rules.reasons[code] for code in stop.extra.get("reasons", []) if code in rules.reasons]
    language = intake.client_language or DEFAULT_LANGUAGE
    if intake.client_id:
        try:
            language = (await referrals.preview_client(staff=request.user, client=intake.client())).language
        except DomainError:
            pass  # The advice matters more than the client's record: English, then.
    return page(
        request,
        "staff/advice.html",
        reasons=reasons,
        language=language,
        reporting_duties=stop.extra.get("reporting_duties", ""),
    )
