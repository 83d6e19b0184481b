"""Admin pages for staff accounts: list, add, disable or enable, change role. The same
operations as ``handoff user …``, through :mod:`services.referrals.identity`; disabling,
saving a role or "sign out everywhere" also ends the account's sign-ins (:mod:`shared.revocation`)."""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from services.referrals import identity
from services.referrals.web.guards import staff
from services.referrals.web.rendering import page
from shared.auth import ROLES
from shared.errors import DomainError


class StaffAdmin(Controller):
    path = "/admin/staff"
    guards = [staff("admin")]
    include_in_schema = False

    @get("/")
    async def accounts(self, request: Request, saved: FromQuery[str] = "") -> Template:
        # Only an account's own state is shown after a change, never text from the URL.
        return await _accounts_page(request, saved=saved.strip().lower())

    @post("/", status_code=303)
    async def add(self, request: Request) -> Template | Redirect:
        form = await request.form()
        email = str(form.get("email") or "")
        try:
            added = await identity.add_user(
                request.app.state.runtime.sessions,
                email=email,
                role=str(form.get("role") or ""),
                password=str(form.get("password") or ""),
            )
        except DomainError as error:
            return await _accounts_page(request, error=error.detail, email=email, status_code=422)
        return Redirect(f"/admin/staff?{urlencode({'saved': added.email})}", status_code=303)

    @post("/change", status_code=303)
    async def change(self, request: Request) -> Template | Redirect:
        """Save an account's role, disable or enable it, or (``action=signout``) end every sign-in
        it has, on both services."""
        form = await request.form()
        email = str(form.get("email") or "")
        action = str(form.get("action") or "")
        active = {"enable": True, "disable": False}.get(action)
        role = str(form.get("role") or "") or None
        runtime = request.app.state.runtime
        me = request.scope["user"]
        if email.strip().lower() == me.email and (action == "disable" or (role is not None and role != me.role)):
            # The clinic must never lose its last way in by one click: another admin does this.
            refusal = "You cannot disable your own account or take away your own admin role; ask another admin."
            return await _accounts_page(request, error=refusal, status_code=422)
        if action == "disable" and form.get("confirm") != "yes":
            # Disabling ends every sign-in of the account at once: a page of its own asks first.
            return page(request, "staff/confirm_disable.html", email=email.strip().lower())
        try:
            if action == "signout":
                changed = await identity.sign_out_everywhere(
                    runtime.sessions, email=email, revocations=runtime.revocations
                )
                return await _accounts_page(request, signed_out=changed.email)
            changed = await identity.change_user(
                runtime.sessions, email=email, role=role, active=active, revocations=runtime.revocations
            )
        except DomainError as error:
            return await _accounts_page(request, error=error.detail, status_code=409 if error.field == "email" else 422)
        except identity.NotRevoked as warning:
            # The change is saved (shown as such); the admin learns what still works, and how to retry.
            return await _accounts_page(
                request,
                saved=warning.account.email,
                error=f"{warning}. Do it again once Redis is back to sign them out there.",
            )
        return Redirect(f"/admin/staff?{urlencode({'saved': changed.email})}", status_code=303)


async def _accounts_page(request: Request, *, status_code: int = 200, **values: object) -> Template:
    accounts = await identity.list_users(request.app.state.runtime.sessions)
    values["saved"] = next((a for a in accounts if a.email == values.get("saved")), None)
    return page(
        request,
        "staff/admin_staff.html",
        status_code=status_code,
        accounts=accounts,
        roles=ROLES,
        min_password=identity.MIN_PASSWORD_LENGTH,
        **values,
    )
