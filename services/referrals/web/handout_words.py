"""What the client's handout says in the client's language, from the gettext catalogs of
:mod:`shared.translations` (the same the client's email is written from): when to make the call,
by urgency; what an urgent handout says (a practice took it, one is still looking, it failed);
the heading over the client advice. Plain words, no diagnosis."""

from __future__ import annotations

from typing import TypedDict

from shared import translations


class Today(TypedDict):
    """Urgent means today, in whole sentences: the title, the lines for each case, then 911."""

    title: str
    failed: list[str]
    accepted: list[str]
    open: list[str]
    worse: str


class HandoutWords(TypedDict):
    # When to make the call, by urgency (urgent, soon, routine).
    when: dict[str, str]
    today: Today
    advice_title: str


def handout_language(language: str) -> str:
    """The handout language for a requested one (``es``, ``es-MX``…): English unless we have it."""
    return translations.language(language)


def words(language: str) -> HandoutWords:
    """The handout's words in ``language`` (a code :func:`handout_language` returned)."""
    _ = translations.translations(language).gettext
    return {
        # Urgent means today (clinical review §4): never "tomorrow at the latest".
        "when": {
            "urgent": _(
                "Please contact one of them today. If none of them can see you today, go to an urgent care "
                "clinic or see your own doctor today."
            ),
            "soon": _("Please contact one of them within the next week."),
            "routine": _("Please contact one of them when it suits you."),
        },
        "today": {
            "title": _("Please be seen today"),
            "failed": [
                _("We could not find a practice to take your referral in time, so please arrange it yourself today."),
                _(
                    "Call your own doctor's office today and tell them what your therapist noticed. If they cannot "
                    "see you today, go to an urgent care center today. You can also call the practices listed below."
                ),
            ],
            "accepted": [
                _(
                    "The practice below has agreed to see you. Please call them today to be seen today. If they "
                    "cannot see you today, see your own doctor or go to an urgent care center today."
                )
            ],
            "open": [
                _(
                    "Please call one of the practices below today to be seen today. If none of them can see you "
                    "today, see your own doctor or go to an urgent care center today."
                )
            ],
            "worse": _("If it gets worse, call 911."),
        },
        "advice_title": _("What to do today, and if it gets worse"),
    }
