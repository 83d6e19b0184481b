"""What both FHIR R4 APIs share (directory's public one, referrals' staff one): the media type,
searchset Bundles, OperationOutcome errors built from the service's own error answers, and the
typed shapes the OpenAPI document shows for them. The resources themselves belong to each service
(:mod:`services.directory.fhir`, :mod:`services.referrals.fhir`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandler

from shared.openapi import WHEN

FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json"

Json = dict[str, Any]

# The issue type (FHIR's IssueType codes) of each status these APIs answer with.
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


class Issue(msgspec.Struct, kw_only=True):
    severity: Literal["error"]
    code: Annotated[str, msgspec.Meta(description="a FHIR IssueType code: invalid, not-found, throttled…")]
    diagnostics: str
    expression: list[str] | msgspec.UnsetType = msgspec.UNSET


class OperationOutcome(msgspec.Struct, kw_only=True):
    """An error: what went wrong and, in ``expression``, the search parameter at fault."""

    resourceType: Literal["OperationOutcome"]
    issue: list[Issue]


class BundleLink(msgspec.Struct, kw_only=True):
    relation: Literal["self", "next"]
    url: str


class SearchsetBundle(msgspec.Struct, kw_only=True):
    """A page of matches: ``total`` in all, ``next`` links the following page."""

    resourceType: Literal["Bundle"]
    type: Literal["searchset"]
    total: int
    link: list[BundleLink]
    entry: list[dict[str, Any]]


def searchset(
    entries: Sequence[tuple[Json, Json | None]], *, base: str, total: int, self_url: str, next_url: str | None
) -> SearchsetBundle:
    """A searchset Bundle of ``entries`` (each resource with the extension of its ``search``
    element, such as a distance, or None), ``total`` matches in all, linking this page and the next."""
    links = [BundleLink(relation="self", url=self_url)]
    if next_url is not None:
        links.append(BundleLink(relation="next", url=next_url))
    return SearchsetBundle(
        resourceType="Bundle",
        type="searchset",
        total=total,
        link=links,
        entry=[
            {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match", **({} if extension is None else {"extension": [extension]})},
            }
            for resource, extension in entries
        ],
    )


def operation_outcome(code: str, diagnostics: str, *, expression: str | None = None) -> Json:
    """An error as FHIR states one: ``code`` from the IssueType value set (``not-found``,
    ``invalid``, ``throttled``…)."""
    issue: Json = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_handler(
    handler: ExceptionHandler, *, query_names: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
) -> ExceptionHandler:
    """``handler`` (one of the service's own error answers) turned into an OperationOutcome of the
    same status and headers; the field at fault becomes the issue's ``expression``, renamed by
    ``query_names`` where the Python name differs from the query parameter's."""

    def handle(request: Request, exc: Exception) -> Response:
        answer = handler(request, exc)
        body = answer.content if isinstance(answer.content, dict) else {}
        status = answer.status_code or 500
        extra = body.get("extra") or {}
        keys = [item.get("key") for item in (extra if isinstance(extra, list) else [extra]) if isinstance(item, dict)]
        key = next((str(key) for key in keys if key), None)
        outcome = operation_outcome(
            ISSUE_TYPES.get(status, "exception"),
            str(body.get("detail", "error")),
            expression=None if key is None else (query_names or {}).get(key, key),
        )
        return Response(
            outcome, status_code=status, headers={**answer.headers, **(headers or {})}, media_type=MEDIA_TYPE
        )

    return handle


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI description of these error statuses, each an OperationOutcome."""
    return {
        status: ResponseSpec(
            data_container=OperationOutcome, media_type=MEDIA_TYPE, description=WHEN[status], generate_examples=False
        )
        for status in statuses
    }
