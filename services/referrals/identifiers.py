"""The referral note's identifier guard, knowing no framework. Every partner offered a referral
reads its note before accepting, when they may see nothing that identifies the client (minimum
necessary disclosure), so a note holding the client's name or any part of it, a phone number, an
email address or a date that reads as a date of birth is refused.

Unlike the diagnostic-wording check (:func:`services.referrals.domain.diagnostic_wording`), which
only warns, this one refuses: an identifier in the note is a disclosure the moment the referral is
offered, and the form keeps the note so the therapist only has to take it out. Observations stay
allowed: "left shoulder", "3 weeks", "since 2019", "fell on 03/14/2024" (a recent date)."""

from __future__ import annotations

import re
from datetime import date

from shared.errors import InvalidInput

# A full date this many years back or more reads as someone's birth, not as an event of their care.
BIRTH_YEARS_BACK = 18
# Name parts shorter than this ("Al", "Jo", "Li") are too often ordinary words or initials.
NAME_PART_LETTERS = 3

_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# A North American number written any usual way, a seven-digit local one, or an international one.
_PHONE = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}"
    r"|\d{3}[\s.-]\d{4}"
    r"|\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}"
    r")(?![\w/-])"
)
_MONTHS = {
    name: index
    for index, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
# Full dates: 03/14/1961, 3-14-61, 14.03.1961, 1961-03-14, March 14, 1961, 14 March 1961.
_DATE = re.compile(
    rf"\b(?:"
    rf"(?P<m>\d{{1,2}})[/.-](?P<d>\d{{1,2}})[/.-](?P<y>\d{{4}}|\d{{2}})"
    rf"|(?P<iy>\d{{4}})[/.-](?P<im>\d{{1,2}})[/.-](?P<id>\d{{1,2}})"
    rf"|(?P<wm>{_MONTH})\.?\s+(?P<wd>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<wy>\d{{4}})"
    rf"|(?P<vd>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<vm>{_MONTH})\.?,?\s+(?P<vy>\d{{4}})"
    rf")\b",
    re.IGNORECASE,
)
# Words that say a date (or a bare year) that follows is a birth date: "DOB 03/14/1961", "born 1961".
_BIRTH_WORDS = re.compile(
    r"\b(?:d\.?o\.?b\.?|date of birth|birth ?date|birthday|born(?: on| in)?|b\.)\s*[:#-]?\s*"
    rf"(?P<when>(?:\d{{1,4}}[/.-]\d{{1,2}}(?:[/.-]\d{{2,4}})?|(?:{_MONTH})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTH})\.?,?\s+\d{{4}}|(?:19|20)\d\d))",
    re.IGNORECASE,
)


def identifiers_in_note(note: str, *, client_name: str, today: date) -> list[str]:
    """What in ``note`` identifies the client, each in plain words with the text found; empty
    when the note is fine to show to partners."""
    found: list[str] = []
    parts = _name_parts(client_name)
    named = [
        match.group(0)
        for part in parts
        for match in [re.search(rf"(?<!\w){re.escape(part)}(?!\w)", note, re.IGNORECASE)]
        if match
    ]
    if named:
        found.append(f"the client's name ({', '.join(repr(word) for word in dict.fromkeys(named))})")
    emails = [m.group(0) for m in _EMAIL.finditer(note)]
    found += [f"an email address ({e!r})" for e in emails]
    # An email address's digits are not a phone number too; a date is not one either.
    without_emails = _EMAIL.sub(" ", note)
    births = [m.group(0).strip() for m in _BIRTH_WORDS.finditer(without_emails)]
    found += [f"a date of birth ({b!r})" for b in births]
    without_births = _BIRTH_WORDS.sub(" ", without_emails)
    for match in _DATE.finditer(without_births):
        born = _as_date(match, today)
        if born is not None and _years_back(born, today) >= BIRTH_YEARS_BACK:
            found.append(f"a date that reads as a date of birth ({match.group(0)!r})")
    without_dates = _DATE.sub(" ", without_births)
    found += [f"a phone number ({m.group(0).strip()!r})" for m in _PHONE.finditer(without_dates)]
    return found


def check_note(note: str, *, client_name: str, today: date) -> None:
    """Refuse (422, ``note``) a note that identifies the client, saying what to take out."""
    found = identifiers_in_note(note, client_name=client_name, today=today)
    if found:
        raise InvalidInput(
            "Partners read the note before they accept, when they may not know who the client is. "
            f"Take out {_listed(found)}: the client's name and contact details reach the partner "
            "who accepts, not before.",
            field="note",
            extra={"found": found},
        )


def _name_parts(name: str) -> list[str]:
    """The parts of a name worth looking for: every run of letters of 3 or more ("Lindqvist-Moore"
    gives "Lindqvist" and "Moore"; "O'Neil" gives "Neil"), and the whole name."""
    parts = [p for p in re.findall(r"[^\W\d_]+", name) if len(p) >= NAME_PART_LETTERS]
    whole = " ".join(name.split())
    return list(dict.fromkeys([whole, *parts] if len(parts) > 1 else parts))


def _as_date(match: re.Match[str], today: date) -> date | None:
    """The date a :data:`_DATE` match names, or None when it is no calendar date (03/45/1961)."""
    groups = match.groupdict()
    try:
        if groups["y"]:
            year = int(groups["y"])
            first, second = int(groups["m"]), int(groups["d"])
            # 03/14/1961 is American; 14/03/1961 can only be day first.
            month, day = (first, second) if first <= 12 else (second, first)
        elif groups["iy"]:
            year, month, day = int(groups["iy"]), int(groups["im"]), int(groups["id"])
        elif groups["wy"]:
            year, month, day = int(groups["wy"]), _MONTHS[groups["wm"].lower()], int(groups["wd"])
        else:
            year, month, day = int(groups["vy"]), _MONTHS[groups["vm"].lower()], int(groups["vd"])
        return date(_full_year(year, today), month, day)
    except ValueError:
        return None


def _full_year(year: int, today: date) -> int:
    # Two digits: the most recent such year that is not in the future ("61" is 1961 in 2026).
    if year >= 100:
        return year
    this_century = today.year // 100 * 100
    return this_century + year if this_century + year <= today.year else this_century - 100 + year


def _years_back(then: date, today: date) -> int:
    return today.year - then.year - ((today.month, today.day) < (then.month, then.day))


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
