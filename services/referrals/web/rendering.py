"""One way to render an HTML page: every template gets the clinic's name and the signed-in staff
member (if any) besides its own values."""

from __future__ import annotations

from litestar import Request
from litestar.response import Template

from shared.auth import Staff


def page(request: Request, template: str, *, status_code: int = 200, **values: object) -> Template:
    user = request.scope.get("user")
    return Template(
        template,
        status_code=status_code,
        context={
            "clinic_name": request.app.state.settings.clinic_name,
            "user": user if isinstance(user, Staff) else None,
            **values,
        },
    )
