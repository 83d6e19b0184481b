"""The partner inbox behind the link in every email to a partner (``/inbox/{token}``), and the
admin's page to revoke an address's inbox links (``/admin/inbox``). GET only shows (mail scanners
follow links); answers and reports are CSRF-protected POSTs that come back to the inbox."""

from __future__ import annotations

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Template

from services.referrals.service import LinkRefused, Referrals
from services.referrals.web import respond
from services.referrals.web.guards import staff
from services.referrals.web.rendering import page
from shared.auth import Staff
from shared.errors import InvalidInput

# Refusals of the inbox link itself; an answer or report refused through a good inbox link is
# explained with the single-offer pages' words (respond.REFUSALS), on the inbox.
INBOX_REFUSALS = {
    "invalid": (
        403,
        "This inbox link is not valid",
        "The link may have been copied incompletely. Please use the link in the email exactly as "
        "it was sent, or contact the clinic.",
    ),
    "expired": (
        410,
        "This inbox link has expired",
        "Inbox links last six months. The newest email from the clinic carries a fresh one, or contact the clinic.",
    ),
    "revoked": (
        410,
        "This inbox link was turned off",
        "The clinic turned off this inbox link, for instance because it may have been shared. "
        "The next email from the clinic carries a new one; contact the clinic if you need it "
        "sooner. Nothing was changed.",
    ),
}


class InboxController(Controller):
    path = "/inbox"
    include_in_schema = False

    @get("/{token:str}")
    async def show(self, request: Request, referrals: NamedDependency[Referrals], token: FromPath[str]) -> Template:
        return await _inbox(request, referrals, token)

    @post("/{token:str}/offers/{offer_id:str}", status_code=200)
    async def answer(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        token: FromPath[str],
        offer_id: FromPath[str],
        data: URLEncodedBody[respond.Answer],
    ) -> Template:
        try:
            outcome = await referrals.answer_in_inbox(
                token=token, offer_id=offer_id, decision=data.decision, reason=data.reason or None, note=data.note
            )
        except LinkRefused as refused:
            return await _refused_within(request, referrals, token, refused)
        except InvalidInput as error:
            errors = respond.answer_errors(data) or respond.worded([error], respond.ANSWER_LABELS)
            return await _inbox(request, referrals, token, status_code=422, failed=offer_id, errors=errors, answer=data)
        notice = (
            "Thank you: you accepted the referral. The client's details are below, under "
            "“Accepted, awaiting your report”."
            if outcome == "accepted"
            else "Thank you: your answer is recorded and the clinic will offer the referral elsewhere."
        )
        return await _inbox(request, referrals, token, notice=notice)

    @post("/{token:str}/reports/{offer_id:str}", status_code=200)
    async def report(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        token: FromPath[str],
        offer_id: FromPath[str],
        data: URLEncodedBody[respond.ReportForm],
    ) -> Template:
        try:
            await referrals.report_in_inbox(token=token, offer_id=offer_id, report=data.to_report())
        except LinkRefused as refused:
            return await _refused_within(request, referrals, token, refused)
        except InvalidInput as error:
            errors = data.errors(today=referrals.today()) or respond.worded([error], respond.REPORT_LABELS)
            return await _inbox(request, referrals, token, status_code=422, failed=offer_id, errors=errors, form=data)
        return await _inbox(request, referrals, token, notice="Thank you: your report is sent to the therapist.")


async def _inbox(
    request: Request, referrals: Referrals, token: str, *, status_code: int = 200, **values: object
) -> Template:
    """The inbox page, or the refusal of its link."""
    try:
        inbox = await referrals.open_inbox(token=token)
    except LinkRefused as refused:
        return _refused(request, refused)
    return Template(
        "respond/inbox.html",
        status_code=status_code,
        context=respond._context(request, inbox=inbox, token=token, **values),
    )


async def _refused_within(request: Request, referrals: Referrals, token: str, refused: LinkRefused) -> Template:
    """An answer or report the use case refused: the inbox link's own refusal page when the
    link is at fault, else the inbox, saying why that one offer could not be answered."""
    if refused.why in INBOX_REFUSALS and refused.why != "expired":
        return _refused(request, refused)
    status, title, explanation = respond.REFUSALS[refused.why]
    return await _inbox(request, referrals, token, status_code=status, refusal=f"{title}. {explanation}")


def _refused(request: Request, refused: LinkRefused) -> Template:
    status, title, explanation = INBOX_REFUSALS.get(refused.why, INBOX_REFUSALS["invalid"])
    return Template(
        "respond/refused.html",
        status_code=status,
        context=respond._context(request, title=title, explanation=explanation),
    )


class InboxAdmin(Controller):
    """Turn off a partner address's inbox links (a leaked one): every link issued so far is
    refused, and the partner's next email carries a new one."""

    path = "/admin/inbox"
    guards = [staff("admin")]
    include_in_schema = False

    @get("/")
    async def addresses(self, request: Request, referrals: NamedDependency[Referrals]) -> Template:
        return await _admin_page(request, referrals)

    @post("/revoke", status_code=200)
    async def revoke(self, request: Request, referrals: NamedDependency[Referrals]) -> Template:
        form = await request.form()
        email = str(form.get("email") or "").strip().lower()
        known = {a.email for a in await referrals.inbox_addresses()}
        if email not in known:
            return await _admin_page(
                request, referrals, status_code=422, error="Choose the email address of a partner in the directory."
            )
        user = request.scope["user"]
        assert isinstance(user, Staff)  # the guard put it there
        await referrals.revoke_inbox_links(email=email, by=user)
        return await _admin_page(request, referrals, revoked=email)


async def _admin_page(request: Request, referrals: Referrals, *, status_code: int = 200, **values: object) -> Template:
    return page(
        request,
        "staff/admin_inbox.html",
        status_code=status_code,
        addresses=await referrals.inbox_addresses(),
        **values,
    )
