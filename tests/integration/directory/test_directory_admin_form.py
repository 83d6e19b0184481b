"""Issue 13's forms that help, on the partner admin form and the CSV import: every error at once
beside its field, named by the field's label, with what was typed kept; ZIP codes and states
checked alike in the form and in CSV; the category chosen, never assumed; limits announced."""

from __future__ import annotations

import re

from litestar.testing import TestClient

from shared.web import STAFF_COOKIE
from tests.support.directory import FORM, bearer
from tests.support.pages import assert_accessible, structure

SEVEN_BAD = {
    "name": "",
    "email": "not-an-address",
    "website": "baypt dot example",
    "state": "Florida",
    "postal_code": "1234",
    "lat": "north",
    "response_window_days": "soon",
}


def _admin(client: TestClient) -> TestClient:
    client.cookies.set(STAFF_COOKIE, bearer("admin")["Authorization"].split()[1])
    return client


def _csrf(text: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', text)
    assert found
    return found.group(1)


def test_seven_bad_fields_get_seven_messages_in_one_submit(client: TestClient) -> None:
    admin = _admin(client)
    form = admin.get("/admin/partners/new")
    sent = {**FORM, **SEVEN_BAD, "lon": "-82.64", "bio": "We fix knees."}
    answer = admin.post("/admin/partners/new", data={"_csrf_token": _csrf(form.text), **sent}, follow_redirects=False)
    assert answer.status_code == 422
    page = answer.text
    assert "fix the 7 fields below" in page
    messages = re.findall(r'<p id="e-([a-z_0-9]+)" class="error">([^<]+)</p>', page)
    assert {name for name, _ in messages} == set(SEVEN_BAD), messages
    labels = {
        "name": "Name",
        "email": "Referral email",
        "website": "Website",
        "state": "State",
        "postal_code": "ZIP code",
        "lat": "Latitude",
        "response_window_days": "Response window (days)",
    }
    for name, message in messages:
        assert message.startswith(labels[name]), (name, message)
        assert "postal_code" not in message and "response_window_days" not in message
    # What was typed stays, the good and the bad alike.
    for value in ("not-an-address", "Florida", "1234", "north", "soon", "We fix knees.", "(727) 555-0100"):
        assert f'value="{value}"' in page or f">{value}<" in page, value
    assert_accessible(structure(page))


def test_the_category_is_chosen_and_limits_are_announced(client: TestClient) -> None:
    admin = _admin(client)
    form = admin.get("/admin/partners/new").text
    assert '<option value="">Choose a category</option>' in form
    assert (
        re.search(r'<option value="[a-z_]+" selected>', form.split('id="f-category"')[1].split("</select>")[0]) is None
    )
    assert 'maxlength="2000"' in form and "up to 2,000 characters" in form
    no_category = {**FORM, "category": ""}
    answer = admin.post("/admin/partners/new", data={"_csrf_token": _csrf(form), **no_category}, follow_redirects=False)
    assert answer.status_code == 422 and "Category is required" in answer.text


def test_a_csv_row_with_a_made_up_zip_or_a_state_name_is_refused(client: TestClient) -> None:
    rows = (
        "name,category,email,state,postal_code\n"
        "Bay PT,physical_therapy,a@bay.example,FL,ABCDE\n"
        "Gulf PT,physical_therapy,b@gulf.example,Florida,33701\n"
    )
    headers = {**bearer("admin"), "Content-Type": "text/csv"}
    answer = client.post("/api/v1/partners/import", content=rows.encode(), headers=headers)
    assert answer.status_code == 422, answer.text
    text = answer.text
    assert "postal_code" in text and "state" in text and "ABCDE" in text and "Florida" in text
