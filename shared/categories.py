"""The partner-category vocabulary, loaded from ``categories.toml`` beside this module."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

import msgspec

Kind = Literal["clinical", "non_clinical"]

# Ten characters, the last an X (e.g. 207Q00000X, 2084N0400X), as the NUCC publishes them.
_NUCC_CODE = re.compile(r"^[0-9A-Z]{9}X$")


class Category(msgspec.Struct, frozen=True):
    slug: str
    label: str
    kind: Kind
    # The NUCC Health Care Provider Taxonomy code the category stands for, and its NUCC name;
    # None where no single code fits.
    nucc: str | None = None
    nucc_display: str = ""


class _File(msgspec.Struct):
    category: list[Category]


VOCABULARY = Path(__file__).with_name("categories.toml")
SYNONYMS = Path(__file__).with_name("category_synonyms.toml")


@cache
def load(path: Path = VOCABULARY) -> dict[str, Category]:
    """Categories by slug, in file order. A malformed file raises at start, naming the problem."""
    data = msgspec.convert(tomllib.loads(path.read_text()), _File)
    categories: dict[str, Category] = {}
    for category in data.category:
        if category.slug in categories:
            raise ValueError(f"{path}: category {category.slug!r} is listed twice")
        if category.nucc is not None and not (_NUCC_CODE.match(category.nucc) and category.nucc_display):
            raise ValueError(f"{path}: category {category.slug!r} needs a NUCC code like 207Q00000X and its display")
        categories[category.slug] = category
    return categories


@cache
def search_words(path: Path = SYNONYMS, vocabulary: Path = VOCABULARY) -> dict[str, frozenset[str]]:
    """The words and phrases that name a category in a search, each to the slugs it finds:
    ``category_synonyms.toml`` beside this module, every category's label and the words of its
    label and slug ("Registered dietitian" → "registered dietitian", "dietitian"). Lower case.
    A synonym of an unknown category raises at start, naming it."""
    categories = load(vocabulary)
    given = msgspec.convert(tomllib.loads(path.read_text()), dict[str, list[str]])
    found: dict[str, set[str]] = {}
    for slug, words in given.items():
        if slug not in categories:
            raise ValueError(f"{path}: synonyms for {slug!r}, which is not a category of {vocabulary.name}")
        for word in words:
            found.setdefault(" ".join(word.casefold().split()), set()).add(slug)
    for slug, category in categories.items():
        label = category.label.casefold()
        names = {label, slug.replace("_", " "), *re.findall(r"[a-z]{4,}", label), *slug.split("_")}
        for name in names:
            if len(name) >= 4 or name == label:
                found.setdefault(name, set()).add(slug)
    return {word: frozenset(slugs) for word, slugs in found.items()}
