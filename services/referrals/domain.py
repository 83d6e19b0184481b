"""Referral rules that know no framework: statuses and the one state machine, urgency order,
consent coverage, the observation-note wording check, and the domain's own errors."""

from __future__ import annotations

import re
from typing import Literal

from shared.errors import Conflict, InvalidInput

# FHIR Task status codes (https://hl7.org/fhir/task.html#statemachine), as the brief asks.
Status = Literal[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
    "failed",
]
Urgency = Literal["emergency", "urgent", "soon", "routine", "advice"]
OfferStatus = Literal["queued", "offered", "accepted", "declined", "expired", "withdrawn"]
ConsentScope = Literal["clinical", "non_clinical"]

# Most urgent first. ``advice`` (the therapist acts now, e.g. shares a hotline, but no partner is
# needed) comes last because it sends nothing: an emergency among the reasons still stops
# everything, any referral reason decides the referral's urgency and goes ahead, and advice alone
# gives an advice-only assessment. Last does not mean it can wait: its instruction is shown
# whatever else was chosen.
URGENCY_ORDER: tuple[Urgency, ...] = ("emergency", "urgent", "soon", "routine", "advice")
OPEN_STATUSES: frozenset[str] = frozenset({"draft", "requested", "received", "accepted", "in-progress", "on-hold"})
# Statuses a therapist may still act on: a closed referral never needs attention.
CLOSED_STATUSES: frozenset[str] = frozenset({"completed", "cancelled"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"requested", "cancelled"}),
    "requested": frozenset({"received", "accepted", "rejected", "on-hold", "cancelled", "failed"}),
    # Back to requested when the partner who acknowledged it declines or is paused and the
    # referral is offered to the next partner.
    "received": frozenset({"requested", "accepted", "rejected", "on-hold", "cancelled", "failed"}),
    "accepted": frozenset({"in-progress", "completed", "on-hold", "cancelled", "failed"}),
    # A rejected or failed referral can be forwarded to another partner.
    "rejected": frozenset({"requested", "cancelled", "failed"}),
    "in-progress": frozenset({"completed", "on-hold", "cancelled", "failed"}),
    "on-hold": frozenset({"requested", "received", "accepted", "in-progress", "cancelled", "failed"}),
    "failed": frozenset({"requested"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}

DECLINE_REASONS = {
    "no_capacity": "No capacity right now",
    "outside_scope": "Outside my scope of practice",
    "not_accepting": "Not accepting new clients",
    "other": "Other",
}
# Longest note a partner's answer carries; the form announces it (maxlength).
ANSWER_NOTE_LIMIT = 2000


class InvalidTransition(Conflict):
    """The referral's current status does not allow the requested change."""


class EmergencyStop(InvalidInput):
    """An emergency reason: no referral; the therapist must act now (call 911 / 988)."""


class AdviceOnly(InvalidInput):
    """Advice reasons only (abuse disclosure): no partner is needed, no referral is made; the
    therapist shares the instruction now. Answered like an emergency (422)."""


class MixedReasons(InvalidInput):
    """The reasons need different kinds of partner: one referral per group, sent together
    (``extra.groups``), never one that drops or dilutes the more urgent reason's specialist."""


class ScopeViolation(InvalidInput):
    """A chosen partner's category is not allowed for the referral's reasons."""


RefusalReason = Literal["invalid", "expired", "used", "withdrawn", "taken", "revoked"]


class LinkRefused(Exception):
    """A partner link that cannot be used: ``why`` is invalid, expired, used, withdrawn (a link
    from an earlier offering of the offer, before a hold say) or taken (another partner accepted
    the referral first); an inbox link is ``revoked`` once the admin revoked its address's links."""

    def __init__(self, why: RefusalReason) -> None:
        super().__init__(why)
        self.why = why


def check_transition(current: str, target: str) -> None:
    """Raise :class:`InvalidTransition` unless ``current → target`` is allowed."""
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"a referral that is {current} cannot become {target}", field="status", extra={"status": current}
        )


def most_urgent(urgencies: list[Urgency]) -> Urgency:
    return min(urgencies, key=URGENCY_ORDER.index)


def waitlist_refused(*, urgency: str, accepting_new_clients: str) -> bool:
    """True when a partner with this answer to "accepting new clients" may not take a referral of
    this urgency: a waitlist cannot see the client today, so it is never offered an urgent one
    (clinical review §4). Partners not accepting at all are left out whatever the urgency."""
    return urgency == "urgent" and accepting_new_clients == "waitlist"


def answer_problems(*, decision: str, reason: str | None, note: str) -> list[InvalidInput]:
    """Everything wrong with a partner's accept-or-decline answer, each naming its field, in the
    form's order (empty when it can be recorded)."""
    problems: list[InvalidInput] = []
    if decision not in ("accept", "decline"):
        problems.append(InvalidInput("choose accept or decline", field="decision"))
    if reason and reason not in DECLINE_REASONS:
        problems.append(InvalidInput("choose one of the reasons listed", field="reason"))
    elif decision == "decline" and not reason:
        problems.append(InvalidInput("say why you are declining", field="reason"))
    if len(note) > ANSWER_NOTE_LIMIT:
        problems.append(InvalidInput(too_long(note, ANSWER_NOTE_LIMIT), field="note"))
    return problems


def too_long(text: str, limit: int) -> str:
    """The words refusing a text over its limit."""
    return f"at most {limit:,} characters (this has {len(text):,})"


def check_consent(*, given: bool, scope: list[str], kinds_needed: set[str]) -> None:
    """No referral leaves without the client's consent covering every kind of partner it goes to."""
    if not given:
        raise InvalidInput("the client's consent is required before a referral is sent", field="consent.given")
    missing = sorted(kinds_needed - set(scope))
    if missing:
        readable = " and ".join(k.replace("_", "-") for k in missing)
        raise InvalidInput(
            f"the client's consent does not cover {readable} partners",
            field="consent.scope",
            extra={"missing": missing},
        )


# Therapists record observations, not diagnoses (scope of practice for massage therapy). The guard
# only warns: wording is the therapist's professional responsibility, and a hard block would push
# notes into vaguer language (clinical review §3). The corpus it must pass is
# tests/unit/test_note_guard_corpus.py; grow both together.

# Condition names that read as a diagnosis wherever they stand ("tendinitis in the right elbow").
_NAMED = (
    r"dvt|deep[- ]vein thrombosis|thrombosis|embolism|sciatica|herniat\w*(?: discs?)?|(?:bulging|slipped) discs?"
    r"|\w+itis|tendinopathy|carpal tunnel|thoracic outlet(?: syndrome)?|melanoma|subluxat\w*|misaligned"
    r"|out of (?:place|alignment)|fractured|pinched nerve"
    r"|(?:rotator cuff|ligament|meniscus|meniscal|labral|acl|mcl|muscle|tendon|hamstring|calf) tear"
    r"|torn (?:rotator cuff|ligament|meniscus|labrum|acl|mcl|muscle|tendon|hamstring|calf)"
    r"|broken (?:rib|bone|wrist|arm|leg|ankle|toe|finger|hand|foot|collarbone|hip|nose)"
)
# Everyday words that name a condition only once something asserts them: "it's a clot", not
# "long strokes"; "a fracture", not "no fracture seen".
_ASSERTED_ONLY = (
    r"(?:blood )?clots?|strokes?|cancer|tumou?rs?|infect(?:ion|ed)|uti|tmj|tear|torn|fracture|broken"
    r"|depress(?:ed|ion)|anorexi[ac]|bulimi[ac]|alcoholic|addict(?:ed)?|migraines?|concussion|heart attack"
)
# Assertive framing, flagged when a condition follows within a few words.
_FRAMING = (
    r"has|have|is|it's|it is|this is|that is|he's|she's|they're|likely|probably|possibly|possible|suspected?"
    r"|looks like|sounds like|seems like|consistent with|suggestive of|indicative of|i think|could be|might be"
    r"|may be|must be"
)
# Diagnostic on their own; a condition right after them is part of the same finding.
_ALONE = (
    r"you(?:'ve| have)?(?: probably| likely| might| may)? (?:have|got)\b(?! been\b)|diagnos\w*|dx\b:?|r/o|rule out"
    r"|fracture of|suffers? from|suffering from"
)
_CONDITION = rf"(?:{_NAMED}|{_ASSERTED_ONLY})"
_FINDING = re.compile(
    rf"\b(?P<alone>{_ALONE})(?:[\s:,-]+(?:[\w'/-]+\s+){{0,3}}?{_CONDITION}\b)?"
    rf"|\b(?:{_FRAMING})\s+(?:[\w'/-]+\s+){{0,3}}?(?P<framed>{_CONDITION})\b"
    rf"|\b(?P<named>{_NAMED})\b",
    re.IGNORECASE,
)
# Someone else's words or the client's history: "client reports…", "history of…", "was told by…",
# "diagnosed by Dr Lee / in 2019". They cover the rest of the sentence…
_ATTRIBUTED = re.compile(
    r"\b(?:reports?|reported|reporting|says?|said|states?|stated|mentions?|mentioned|told|tells|per|according to"
    r"|history of|hx of|h/o|worried|concerned|afraid|asks?|asked|wonders?|diagnosed by"
    r"|diagnosed\b[^.;]*?\bin (?:19|20)\d\d)\b",
    re.IGNORECASE,
)
# …until the therapist speaks again after a comma ("client reports tingling, likely carpal tunnel").
_OWN_VOICE = re.compile(rf",\s*(?:but\s+)?(?:{_FRAMING}|{_ALONE})\b", re.IGNORECASE)
# "If it spreads or you have chest pain, call 911" is safety advice to the client, not an assertion.
_CONDITIONAL = re.compile(r"\b(?:if|when|whenever|whether|unless|until|how)\b", re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:no|not|\w+n't|without|denies|denied|never|negative for)(?:\W+\w+){0,2}\W*$", re.IGNORECASE)
# Sentence ends, but not the full stop of "Dr." and its kind.
_SENTENCE_END = re.compile(r"(?<!\bdr)(?<!\bmr)(?<!\bms)(?<!\bmrs)(?<!\bst)[.!?;](?=\s|$)|\n", re.IGNORECASE)


def diagnostic_wording(note: str) -> list[str]:
    """The phrases in ``note`` that read as a diagnosis, for the form to warn about."""
    found: set[str] = set()
    for sentence in _SENTENCE_END.split((note or "").replace("\u2019", "'")):
        attributed = [m.start() for m in _ATTRIBUTED.finditer(sentence)]
        own_voice = [m.start() for m in _OWN_VOICE.finditer(sentence)]
        for match in _FINDING.finditer(sentence):
            group = next(name for name in ("alone", "framed", "named") if match.group(name))
            anchor = match.start(group)
            addressed = group == "alone" and match.group(group).lower().startswith("you")
            if _NEGATED.search(sentence, 0, anchor) or (addressed and _CONDITIONAL.search(sentence, 0, anchor)):
                continue
            if any(a <= anchor and not any(a < v <= anchor for v in own_voice) for a in attributed):
                continue
            phrase = match.group("alone") or match.group(0)
            found.add(" ".join(phrase.lower().rstrip(":").split()))
    return sorted(found)
