"""The partner-category vocabulary, loaded from ``categories.toml`` beside this module."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

import msgspec

Kind = Literal["clinical", "non_clinical"]


class Category(msgspec.Struct, frozen=True):
    slug: str
    label: str
    kind: Kind


class _File(msgspec.Struct):
    category: list[Category]


@cache
def load(path: Path = Path(__file__).with_name("categories.toml")) -> dict[str, Category]:
    """Categories by slug, in file order. A malformed file raises at start, naming the problem."""
    data = msgspec.convert(tomllib.loads(path.read_text()), _File)
    categories: dict[str, Category] = {}
    for category in data.category:
        if category.slug in categories:
            raise ValueError(f"{path}: category {category.slug!r} is listed twice")
        categories[category.slug] = category
    return categories
