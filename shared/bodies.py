"""Request bodies as every Handoff app reads them. A body that cannot be read (JSON nested
thousands deep, bytes that are not UTF-8) is the caller's mistake, answered 400 in the shared
error body, where Litestar 2.25 lets the decoder's ``RecursionError`` or ``UnicodeDecodeError``
through as a 500. A text value holding a control character (NUL, BEL, ESC…; a TAB or a line
break is fine) is refused with 422 naming the field: no field of Handoff's holds one, and
PostgreSQL refuses NUL outright. Each app takes ``request_class=Request``."""

from __future__ import annotations

from typing import Any

from litestar import Request as LitestarRequest
from litestar.datastructures import FormMultiDict
from litestar.exceptions import ValidationException

from shared.errors import InvalidInput
from shared.text import has_control_character


class ControlCharacter(InvalidInput):
    """A text value holds a control character; ``field`` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} holds a control character (such as NUL); remove it", field=field)


def control_character_at(value: Any) -> str | None:
    """The path (``client.name``, ``reasons.2``) of the first string in a decoded JSON ``value``
    that holds a control character, or None. Iterative: the value may be nested deep."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if has_control_character(item):
                return path or "body"
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                name = f"{path}.{key}" if path else str(key)
                if has_control_character(str(key)):
                    return name
                pending.append((name, child))
        elif isinstance(item, list):
            pending.extend(
                (f"{path}.{index}" if path else str(index), child) for index, child in reversed(list(enumerate(item)))
            )
    return None


class Request(LitestarRequest):
    """Litestar's request, reading bodies as the module docstring says."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except (RecursionError, UnicodeDecodeError) as exc:
            raise unreadable("JSON", exc) from None
        if (field := control_character_at(value)) is not None:
            raise ControlCharacter(field)
        return value

    async def form(self) -> FormMultiDict:
        try:
            form = await super().form()
        except UnicodeDecodeError as exc:
            raise unreadable("form", exc) from None
        for name, value in form.multi_items():
            if isinstance(value, str) and (has_control_character(value) or has_control_character(name)):
                raise ControlCharacter(name)
        return form


def unreadable(kind: str, exc: Exception) -> ValidationException:
    why = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "is nested too deeply"
    detail = f"the request body {why}: send {kind} encoded as UTF-8, nested a few levels at most"
    return ValidationException(detail, extra=[{"key": "body", "message": detail, "source": "body"}])
