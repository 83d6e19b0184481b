"""Scope-of-practice rules: a data file (``rules.toml``) a clinician can review, loaded and
validated at start. A rule that is unsafe, unsourced or incomplete stops the service naming the
line at fault; every problem in the file is listed at once."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Literal

import msgspec

from services.referrals.domain import URGENCY_ORDER, Urgency, most_urgent
from shared import categories
from shared.errors import InvalidInput

DEFAULT_PATH = Path(__file__).with_name("rules.toml")
ReviewStatus = Literal["proposed", "reviewed"]
# Clinical categories an urgent reason may still never go to: none of them can assess a red flag,
# and manipulation or needling may harm (clinical review §2b).
NOT_FOR_URGENT = frozenset({"chiropractic", "acupuncture", "personal_training"})
# Reasons that send nothing to a partner.
NO_REFERRAL: frozenset[Urgency] = frozenset({"emergency", "advice"})


class RulesError(Exception):
    """The rules file is not valid; the message names the file and line of every problem."""


class ClientAdvice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the client does today and if it gets worse, in plain words and never a diagnosis, by
    language (``en``, ``es``)."""

    en: str = ""
    es: str = ""

    def text(self, language: str) -> str:
        """The advice in ``language`` (``es``, ``es-MX``…), English when there is none in it."""
        return self.es if language.lower().startswith("es") and self.es else self.en


class Reason(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: str = ""
    label: str
    group: str
    urgency: Urgency
    categories: list[str] = []
    guidance: str
    lay_wording: str = ""
    # Emergency and advice reasons: what the therapist does, and tells the client, right now.
    instruction: str = ""
    client_advice: ClientAdvice | None = None
    # False where paper could endanger the client (an abuser may find it): the advice is given by
    # word of mouth unless the therapist chooses to print it.
    printed_handout: bool = True
    # Reasons that rule this one's own referral out (no manipulation with numbness): when one of
    # them is chosen too, this reason goes with that one's group and its partner decides.
    contraindicated_with: list[str] = []
    sources: list[str] = []
    review_status: ReviewStatus | None = None
    reviewed_by: str = ""
    reviewed_on: date | None = None


class Group(msgspec.Struct, frozen=True):
    """Reasons one kind of partner can take together: the most urgent one's urgency, and the
    categories in scope for them, in the most urgent one's order of preference."""

    urgency: Urgency
    reasons: list[Reason]
    categories: list[str]

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def assessment(self) -> Assessment:
        """What the rules say for this group's reasons alone: one referral."""
        return Assessment(
            reasons=list(self.reasons), urgency=self.urgency, categories=self.categories, emergencies=[], groups=[self]
        )

    def summary(self) -> dict[str, object]:
        """The group as the API names it: reasons, urgency, categories."""
        return {"reasons": self.codes, "urgency": self.urgency, "categories": list(self.categories)}


class Rules(msgspec.Struct, frozen=True):
    version: str
    reasons: dict[str, Reason]

    def reason(self, code: str, *, field: str = "reasons") -> Reason:
        try:
            return self.reasons[code]
        except KeyError:
            raise InvalidInput(f"unknown reason code {code!r}", field=field) from None

    def assess(self, codes: list[str]) -> Assessment:
        """What the rules say for a set of reason codes (validated, in the given order)."""
        reasons = self._validated(codes)
        emergencies = [r for r in reasons if r.urgency == "emergency"]
        referable = [r for r in reasons if r.urgency not in NO_REFERRAL]
        groups = _grouped(referable) if not emergencies and referable else []
        return Assessment(
            reasons=reasons,
            urgency=most_urgent([r.urgency for r in reasons]),
            categories=groups[0].categories if len(groups) == 1 else [],
            emergencies=emergencies,
            advice=[r for r in reasons if r.urgency == "advice"],
            groups=groups,
        )

    def groups(self, codes: list[str]) -> list[Group]:
        """The reasons that need a partner, split into groups that can each go to one kind of
        partner, most urgent first (see :func:`_grouped`)."""
        return _grouped([r for r in self._validated(codes) if r.urgency not in NO_REFERRAL])

    def _validated(self, codes: list[str]) -> list[Reason]:
        if not codes:
            raise InvalidInput("at least one reason is required", field="reasons")
        return [self.reason(code, field=f"reasons[{i}]") for i, code in enumerate(codes)]


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules say for a set of reasons: an emergency stops everything; advice is shown
    and needs no partner; the other reasons go to partners, one referral per group."""

    reasons: list[Reason]
    urgency: Urgency
    # The one referral's categories, in its most urgent reason's order of preference; empty when
    # the reasons need several referrals (see ``groups``), or none.
    categories: list[str]
    emergencies: list[Reason]
    advice: list[Reason] = []
    # The referral reasons split by kind of partner, most urgent first; empty after an emergency.
    groups: list[Group] = []

    @property
    def mixed(self) -> bool:
        """The reasons need more than one kind of partner: one referral per group."""
        return len(self.groups) > 1

    @property
    def referral_reasons(self) -> list[Reason]:
        """The reasons a partner hears of: every group's, never an advice reason's."""
        return [r for g in self.groups for r in g.reasons]

    def instruction(self) -> str:
        """What to do now in an emergency."""
        return " ".join(dict.fromkeys(r.instruction for r in self.emergencies))

    def advice_instruction(self) -> str:
        """What the therapist shares for the advice reasons, beside any referral."""
        return " ".join(dict.fromkeys(r.instruction for r in self.advice))


def _grouped(reasons: list[Reason]) -> list[Group]:
    """Referral reasons split into groups that can each go to one kind of partner, most urgent
    first. A less urgent reason joins a group only if it narrows none of its categories, so it
    never blocks or dilutes a more urgent one; equally urgent reasons share a group while every
    one keeps its first-choice category. A contraindicated reason rides with the group of the
    reason that rules it out."""
    unique = sorted({r.code: r for r in reasons}.values(), key=lambda r: URGENCY_ORDER.index(r.urgency))
    chosen = {r.code for r in unique}
    riders = [r for r in unique if chosen.intersection(r.contraindicated_with)]
    building: list[tuple[list[Reason], list[str]]] = []
    for reason in unique:
        if not chosen.intersection(reason.contraindicated_with):
            _place(reason, building)
    for rider in riders:
        ruling_out = next((g for g in building if any(m.code in rider.contraindicated_with for m in g[0])), None)
        if ruling_out is None:  # what rules it out rides elsewhere itself: place it on its own merits
            _place(rider, building)
        else:
            ruling_out[0].append(rider)
    groups = [Group(most_urgent([m.urgency for m in members]), members, kept) for members, kept in building]
    return sorted(groups, key=lambda g: URGENCY_ORDER.index(g.urgency))


def _place(reason: Reason, building: list[tuple[list[Reason], list[str]]]) -> None:
    for members, kept in building:
        if URGENCY_ORDER.index(reason.urgency) > URGENCY_ORDER.index(members[0].urgency):
            fits = set(kept) <= set(reason.categories)
        else:
            narrowed = [c for c in kept if c in reason.categories]
            fits = all(m.categories[0] in narrowed for m in [*members, reason])
            if fits:
                kept[:] = narrowed
        if fits:
            members.append(reason)
            return
    building.append(([reason], list(reason.categories)))


def load(path: Path = DEFAULT_PATH) -> Rules:
    """Parse and validate the rules file."""
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: {exc}") from None
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise RulesError(f"{path}:1: a `version` string is required")
    known = categories.load()
    reasons: dict[str, Reason] = {}
    problems: list[str] = []
    for code, body in (data.get("reasons") or {}).items():
        try:
            reasons[code] = msgspec.convert({**body, "code": code}, Reason)
        except msgspec.ValidationError as exc:
            problems.append(f"{path}:{_line_of(text, code, _key_at_fault(str(exc)))}: reason {code}: {exc}")
            continue
        for key, why in _problems(reasons[code], known):
            problems.append(f"{path}:{_line_of(text, code, key)}: reason {code}: {why}")
    for reason in reasons.values():
        for other in reason.contraindicated_with:
            if other not in reasons:
                where = _line_of(text, reason.code, "contraindicated_with")
                problems.append(f"{path}:{where}: reason {reason.code}: unknown reason {other!r}")
    if problems:
        raise RulesError("\n".join(problems))
    if not reasons:
        raise RulesError(f"{path}: no reasons defined")
    return Rules(version=version, reasons=reasons)


def _problems(reason: Reason, known: Mapping[str, categories.Category]) -> Iterator[tuple[str | None, str]]:
    """What is wrong with one rule, as (the key at fault or None for the header, why)."""
    unknown = [c for c in reason.categories if c not in known]
    if unknown:
        yield "categories", f"unknown category {unknown[0]!r} (see shared/categories.toml)"
        return
    if reason.urgency in NO_REFERRAL:
        if not reason.instruction:
            yield None, f"{reason.urgency} reasons need an `instruction`"
        if reason.categories:
            yield "categories", f"{reason.urgency} reasons send nothing to a partner: they take no categories"
    elif not reason.categories:
        yield None, f"{reason.urgency} reasons need at least one category"
    if not reason.sources:
        yield None, "every rule needs `sources`: the URLs of what it rests on"
    for source in reason.sources:
        if not source.startswith(("https://", "http://")):
            yield "sources", f"{source!r} is not a URL"
    if reason.review_status is None:
        yield None, 'every rule needs a `review_status`: "proposed" until a licensed clinician signs it off'
    elif (reason.review_status == "reviewed") != bool(reason.reviewed_by and reason.reviewed_on):
        yield "review_status", 'a rule is "reviewed" exactly when it has both `reviewed_by` and `reviewed_on`'
    if reason.urgency in ("urgent", "soon") and all(known[c].kind != "clinical" for c in reason.categories):
        yield "categories", f"{reason.urgency} reasons need a clinical category"
    if reason.urgency == "urgent":
        for slug in reason.categories:
            if known[slug].kind != "clinical" or slug in NOT_FOR_URGENT:
                yield "categories", f"urgent reasons cannot go to {slug!r}: it cannot assess a red flag"
    if reason.urgency != "emergency":
        if not reason.lay_wording:
            yield None, f"{reason.urgency} reasons need `lay_wording` for the client's handout"
        advice = reason.client_advice
        if advice is None or not (advice.en.strip() and advice.es.strip()):
            yield "client_advice", f"{reason.urgency} reasons need `client_advice` in both `en` and `es`"


def _key_at_fault(message: str) -> str:
    """The top-level key a msgspec validation message points at."""
    if "- at `$." in message:
        return message.rpartition("`$.")[2].split("`")[0].split(".")[0].split("[")[0]
    return message.partition("unknown field `")[2].partition("`")[0]


def _line_of(text: str, code: str, key: str | None = None) -> int:
    """The line of reason ``code``'s header, or of its ``key`` (a value or a sub-table) when found."""
    own = rf"reasons\.{re.escape(code)}"
    header = re.compile(rf"^[ \t]*\[{own}\]", re.MULTILINE).search(text)
    if header is None:
        return 1
    position = header.start()
    if key:
        # The reason's table runs to the next header that is not one of its own sub-tables.
        next_header = re.compile(rf"^[ \t]*\[(?!{own}\.)", re.MULTILINE).search(text, header.end())
        end = next_header.start() if next_header else len(text)
        at_key = re.compile(rf"^[ \t]*(?:{re.escape(key)}[ \t]*[=.]|\[{own}\.{re.escape(key)}\])", re.MULTILINE)
        found = at_key.search(text, header.end(), end)
        position = found.start() if found else position
    return text.count("\n", 0, position) + 1


__all__ = ["URGENCY_ORDER", "Assessment", "ClientAdvice", "Group", "Reason", "Rules", "RulesError", "load"]
