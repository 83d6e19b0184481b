"""Which text Handoff stores: never a control character (Unicode category Cc: NUL, BEL, ESC…),
which no field of Handoff's has any use for and PostgreSQL refuses (NUL) or renders invisibly."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The same, but for TAB, LF and CR: the whitespace of text that spans lines (a bio, a note).
_CONTROL_BUT_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_character(text: str, *, line_breaks_allowed: bool = True) -> bool:
    """Whether ``text`` holds a control character (TAB, LF and CR excepted unless
    ``line_breaks_allowed`` is false)."""
    return bool((_CONTROL_BUT_BREAKS if line_breaks_allowed else _CONTROL).search(text))
