"""The languages Handoff writes to clients in (the notifier's client emails, the referrals
handout's words): a gettext catalog per language, kept as its ``.po`` file under
``shared/locale/<code>/LC_MESSAGES/messages.po`` and compiled in memory (Babel) when first
needed, so a fresh checkout needs no build step and no compiled ``.mo`` can go stale.

English is the source text (the message ids); a language without a catalog falls back to it.
``babel.cfg`` at the repository's root tells ``pybabel extract`` where the strings are (see the
README: "Translations").
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from babel.messages import mofile, pofile
from babel.support import NullTranslations, Translations

LOCALE = Path(__file__).with_name("locale")
DOMAIN = "messages"
DEFAULT = "en"


def available() -> frozenset[str]:
    """The language codes with a catalog, and English."""
    found = {path.parent.parent.name for path in LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return frozenset(found | {DEFAULT})


def language(code: str) -> str:
    """The language an email asked for in ``code`` (``es``, ``es-MX``…) is written in: that
    language when it has a catalog, else English."""
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in available() else DEFAULT


@functools.cache
def translations(code: str) -> NullTranslations:
    """The compiled catalog of ``code`` (a code :func:`language` returned); English has none."""
    path = LOCALE / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    if code == DEFAULT or not path.is_file():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = pofile.read_po(source, locale=code, domain=DOMAIN)
    compiled = io.BytesIO()
    # Fuzzy entries are drafts: English until a translator confirms them.
    mofile.write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)
