"""What Handoff's OpenAPI documents say besides success: who may call an operation, the one error
body every JSON API answers with (see :mod:`shared.web`), and which error statuses it gives.

Each app takes ``openapi_config=config(title)``. Routes document their errors with
``responses=errors(401, 404, ...)`` and their callers with ``security=STAFF`` (or
``STAFF_OPTIONAL``); a rate-limited route also takes ``operation_class=RateLimited`` so its 429
documents ``Retry-After``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

_STAFF_TOKEN = "staff_token"
STAFF: list[SecurityRequirement] = [{_STAFF_TOKEN: []}]
"""An operation only staff may call."""
STAFF_OPTIONAL: list[SecurityRequirement] = [{}, {_STAFF_TOKEN: []}]
"""A public operation that shows staff more."""


def config(title: str) -> OpenAPIConfig:
    """The OpenAPI document of a Handoff service (at ``/schema/openapi.json``)."""
    token = SecurityScheme(
        type="http",
        scheme="bearer",
        description="a staff token from the referrals service's POST /api/v1/auth/token; both services accept it",
    )
    return OpenAPIConfig(
        title=title,
        version="1.0.0",
        path="/schema",
        components=Components(security_schemes={_STAFF_TOKEN: token}),
        # The document itself, as JSON (also at /schema) and YAML: no viewer that would load its
        # scripts from a CDN. Open the JSON in any OpenAPI tool.
        render_plugins=[JsonRenderPlugin(path=["/openapi.json", "/"]), YamlRenderPlugin()],
    )


class ErrorBody(msgspec.Struct, kw_only=True):
    """An error answer: its status, what went wrong, and the field at fault."""

    status_code: int
    detail: Annotated[str, msgspec.Meta(description="what went wrong, in words")]
    extra: Annotated[
        dict[str, Any] | list[dict[str, Any]],
        msgspec.Meta(description="`key` names the field at fault; a 400 lists one such entry per problem"),
    ]


WHEN = {
    400: "Malformed: a wrong type, a missing field or a value out of range (each named in `extra`)",
    401: "No valid staff bearer token (or the account is disabled)",
    403: "The staff member's role may not do this",
    404: "Nothing with this id, or nothing the caller may see",
    409: "Collides with the current state: a stale `version`, or a change not allowed now",
    413: "The request body is larger than this operation takes",
    422: "Well-formed, but a rule refuses it; `extra.key` names the field",
    429: "Too many requests: wait `Retry-After` seconds",
    503: "The database or Redis is briefly unavailable; nothing was stored, so the request can be retried",
}


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error answers for ``statuses``, each with :class:`ErrorBody`."""
    return {
        status: ResponseSpec(data_container=ErrorBody, description=WHEN[status], generate_examples=False)
        for status in statuses
    }


@dataclass
class RateLimited(Operation):
    """An operation whose 429 answer carries ``Retry-After`` (whole seconds), as documented here."""

    def __post_init__(self) -> None:
        limited = (self.responses or {}).get("429")
        if isinstance(limited, OpenAPIResponse):
            limited.headers = {
                "Retry-After": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
                    description="seconds to wait before asking again",
                    required=True,
                ),
            }
