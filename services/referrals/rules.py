"""Scope-of-practice rules: a data file (``rules.toml``) a clinician can review, loaded and
validated at start. A wrong category or urgency stops the service naming the line at fault."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from services.referrals.domain import URGENCY_ORDER, Urgency, most_urgent
from shared import categories
from shared.errors import InvalidInput

DEFAULT_PATH = Path(__file__).with_name("rules.toml")


class RulesError(Exception):
    """The rules file is not valid; the message names the file and line."""


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    code: str = ""
    label: str
    group: str
    urgency: Urgency
    categories: list[str] = []
    guidance: str
    lay_wording: str = ""
    # Emergency reasons only: what to tell the client to do right now.
    instruction: str = ""


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
        if not codes:
            raise InvalidInput("at least one reason is required", field="reasons")
        reasons = [self.reason(code, field=f"reasons[{i}]") for i, code in enumerate(codes)]
        emergencies = [r for r in reasons if r.urgency == "emergency"]
        urgency = most_urgent([r.urgency for r in reasons])
        allowed: list[str] = []
        if not emergencies:
            # A partner must be in scope for every reason; order follows the first reason's preference.
            common = set.intersection(*(set(r.categories) for r in reasons))
            allowed = [c for c in reasons[0].categories if c in common]
        return Assessment(reasons=reasons, urgency=urgency, categories=allowed, emergencies=emergencies)


class Assessment(msgspec.Struct, frozen=True):
    reasons: list[Reason]
    urgency: Urgency
    categories: list[str]
    emergencies: list[Reason]

    def instruction(self) -> str:
        return " ".join(dict.fromkeys(r.instruction for r in self.emergencies))


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
    for code, body in (data.get("reasons") or {}).items():
        where = f"{path}:{_line_of(text, code)}: reason {code}"
        try:
            reason = msgspec.convert({**body, "code": code}, Reason)
        except msgspec.ValidationError as exc:
            key = str(exc).rpartition("`$.")[2].split("`")[0].split(".")[0].split("[")[0]
            raise RulesError(f"{path}:{_line_of(text, code, key)}: reason {code}: {exc}") from None
        unknown = [c for c in reason.categories if c not in known]
        if unknown:
            raise RulesError(
                f"{path}:{_line_of(text, code, 'categories')}: reason {code}: unknown category {unknown[0]!r} "
                "(see shared/categories.toml)"
            )
        if reason.urgency == "emergency":
            if not reason.instruction:
                raise RulesError(f"{where}: an emergency reason needs an `instruction`")
        elif not reason.categories:
            raise RulesError(f"{where}: a {reason.urgency} reason needs at least one category")
        reasons[code] = reason
    if not reasons:
        raise RulesError(f"{path}: no reasons defined")
    return Rules(version=version, reasons=reasons)


def _line_of(text: str, code: str, key: str | None = None) -> int:
    """The line of reason ``code``'s header, or of its ``key`` when given and found."""
    header = re.search(rf"^[ \t]*\[reasons\.{re.escape(code)}\]", text, re.MULTILINE)
    if header is None:
        return 1
    position = header.start()
    if key:
        next_header = re.compile(r"^[ \t]*\[", re.MULTILINE).search(text, header.end())
        end = next_header.start() if next_header else len(text)
        found = re.compile(rf"^[ \t]*{re.escape(key)}[ \t]*=", re.MULTILINE).search(text, header.end(), end)
        position = found.start() if found else position
    return text.count("\n", 0, position) + 1


__all__ = ["URGENCY_ORDER", "Assessment", "Reason", "Rules", "RulesError", "load"]
