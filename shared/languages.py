"""Languages as people type them: "es", "Spanish" and "Español" are one language. A small table
of the languages US clinics meet most (ISO 639-1 code, English name, the language's own name and
common other spellings); a language not in it is matched by its own spelling alone.

Used by the directory's ``language`` filter (API and public page) and its language picker."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Language:
    code: str
    english: str
    native: str
    others: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """ "Spanish (Español)", or the English name when the two are the same."""
        return self.english if _plain(self.native) == _plain(self.english) else f"{self.english} ({self.native})"


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", "English"),
    Language("es", "Spanish", "Español", ("castellano",)),
    Language("zh", "Chinese", "中文", ("mandarin", "cantonese", "chinese (mandarin)", "chinese (cantonese)")),
    Language("tl", "Tagalog", "Tagalog", ("filipino",)),
    Language("vi", "Vietnamese", "Tiếng Việt"),
    Language("ar", "Arabic", "العربية"),
    Language("fr", "French", "Français"),
    Language("ko", "Korean", "한국어"),
    Language("ru", "Russian", "Русский"),
    Language("de", "German", "Deutsch"),
    Language("ht", "Haitian Creole", "Kreyòl ayisyen", ("creole", "kreyol", "haitian")),
    Language("pt", "Portuguese", "Português"),
    Language("hi", "Hindi", "हिन्दी"),
    Language("it", "Italian", "Italiano"),
    Language("pl", "Polish", "Polski"),
    Language("ja", "Japanese", "日本語"),
    Language("fa", "Persian", "فارسی", ("farsi",)),
    Language("ur", "Urdu", "اردو"),
    Language("gu", "Gujarati", "ગુજરાતી"),
    Language("bn", "Bengali", "বাংলা", ("bangla",)),
    Language("ta", "Tamil", "தமிழ்"),
    Language("te", "Telugu", "తెలుగు"),
    Language("he", "Hebrew", "עברית"),
    Language("el", "Greek", "Ελληνικά"),
    Language("uk", "Ukrainian", "Українська"),
    Language("so", "Somali", "Soomaali"),
    Language("am", "Amharic", "አማርኛ"),
    Language("sw", "Swahili", "Kiswahili"),
    Language("ne", "Nepali", "नेपाली"),
    Language("hmn", "Hmong", "Hmoob"),
    Language("ase", "American Sign Language", "ASL", ("sign language",)),
)


def _plain(text: str) -> str:
    """Lower case, accents dropped, spaces collapsed: "Español" → "espanol"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


@cache
def _index() -> dict[str, Language]:
    found: dict[str, Language] = {}
    for language in LANGUAGES:
        for name in (language.code, language.english, language.native, *language.others):
            found[_plain(name)] = language
    return found


def find(name: str) -> Language | None:
    """The language ``name`` names (a code, its English or own name, another spelling)."""
    return _index().get(_plain(name))


def spellings(name: str) -> tuple[str, ...]:
    """Every way a partner's listing may spell the language ``name`` names, lower-cased: for
    "es" ("es", "spanish", "español", "espanol", "castellano"). A language not in the table: its
    own spelling alone."""
    language = find(name)
    given = " ".join(name.casefold().split())
    if language is None:
        return (given,)
    forms = [language.code, language.english, language.native, *language.others]
    found = {given}
    for form in forms:
        found.add(" ".join(unicodedata.normalize("NFKC", form).casefold().split()))
        found.add(_plain(form))
    return tuple(sorted(found))


def key(name: str) -> str:
    """What the picker offers for a language: its code when known, else its own spelling."""
    language = find(name)
    return language.code if language else " ".join(name.split())


def label(name: str) -> str:
    """How the picker shows a language: "Spanish (Español)", or the spelling given."""
    language = find(name)
    if language:
        return language.label
    spelled = " ".join(name.split())
    return spelled[:1].upper() + spelled[1:]
