"""What a page is made of, read from its HTML: landmarks, headings, labelled form controls,
JSON-LD and OpenGraph, and the structure every public and admin page must have."""

from __future__ import annotations

import itertools
from html.parser import HTMLParser


class Structure(HTMLParser):
    """Landmarks, headings, form controls with their labels, and JSON-LD blocks of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.headings: list[str] = []
        self.controls: list[dict] = []
        self.label_for: set[str] = set()
        self.jsonld: list[str] = []
        self.meta: dict[str, str] = {}
        self.lang = ""
        self._in_jsonld = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.tags.append(tag)
        if tag == "html":
            self.lang = attributes.get("lang", "")
        if tag in ("h1", "h2", "h3", "h4"):
            self.headings.append(tag)
        if tag in ("input", "select", "textarea") and attributes.get("type") not in ("hidden", "submit"):
            self.controls.append(attributes)
        if tag == "label" and "for" in attributes:
            self.label_for.add(attributes["for"])
        if tag == "meta" and "property" in attributes:
            self.meta[attributes["property"]] = attributes.get("content", "")
        self._in_jsonld = tag == "script" and attributes.get("type") == "application/ld+json"

    def handle_data(self, data: str) -> None:
        if self._in_jsonld:
            self.jsonld.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_jsonld = False


def structure(html: str) -> Structure:
    parser = Structure()
    parser.feed(html)
    return parser


def assert_accessible(page: Structure) -> None:
    assert page.lang == "en"
    assert {"header", "main", "footer"} <= set(page.tags)
    assert page.headings.count("h1") == 1 and page.headings[0] == "h1"
    levels = [int(h[1]) for h in page.headings]
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels  # no skipped levels
    for control in page.controls:
        assert control.get("id") in page.label_for, control
