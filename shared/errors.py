"""Domain error bases. Each service's domain raises its own subclasses; the web layer maps the
bases to HTTP (see :mod:`shared.web`), always naming the field at fault."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused the request."""

    def __init__(self, detail: str, *, field: str | None = None, extra: dict | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}


class InvalidInput(DomainError):
    """Well-formed input that the domain will not accept (HTTP 422)."""


class NotFound(DomainError):
    """The thing asked for does not exist, or is not the caller's to see (HTTP 404)."""


class Conflict(DomainError):
    """The request collides with the current state (HTTP 409), e.g. a stale version."""
