"""The referrals FHIR R4 API on a real database and Redis: every answer parsed by
``fhir.resources``' R4B models (which refuse unknown elements and wrong types), the lifecycle in
Task.status with BSeR's business status, the outcome and clearance in Task.output, searches by
``_lastUpdated``, ``focus`` and paging, a staff bearer token required, errors as OperationOutcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from litestar.testing import TestClient

from tests.support.referrals import (
    CLIENT,
    SOON,
    accept,
    csrf,
    flush,
    in_days,
    link_path,
    login,
    new_referral,
    queued_emails,
    report,
    report_link,
)

BSER = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"


def fhir_get(client: TestClient, url: str, headers: dict, **params: object):
    answer = client.get(url, params=params or None, headers=headers)  # {} would drop the query
    assert answer.headers["content-type"].startswith("application/fhir+json"), answer.text
    return answer


def relative(url: str) -> str:
    return urlsplit(url)._replace(scheme="", netloc="").geturl()


def test_a_referral_reads_as_a_service_request_and_a_task_that_follow_its_lifecycle(
    client: TestClient, settings
) -> None:
    headers = login(client, "ada@clinic.example")
    referral, path = accept(client, settings, headers)

    request = ServiceRequest.model_validate(
        fhir_get(client, f"/fhir/r4/ServiceRequest/{referral['id']}", headers).json()
    )
    assert request.status == "active" and request.intent == "order"
    # A "soon" referral: FHIR's urgent, which sits above routine (Handoff's urgent is FHIR's asap).
    assert referral["urgency"] == "soon" and request.priority == "urgent"
    assert [c.coding[0].code for c in request.reasonCode] == SOON
    assert request.identifier[0].value == referral["reference"]
    assert request.performer[0].reference.endswith("/fhir/r4/PractitionerRole/gp1")

    task = Task.model_validate(fhir_get(client, f"/fhir/r4/Task/{referral['id']}", headers).json())
    assert task.status == "accepted"
    assert (task.businessStatus.coding[0].system, task.businessStatus.coding[0].code) == (BSER, "3.0")
    assert task.focus.reference == f"ServiceRequest/{referral['id']}"
    assert task.owner.reference.endswith("/PractitionerRole/gp1")
    assert task.output is None

    booked_for = in_days(12)
    assert report(client, path, outcome="booked", booked_for=booked_for).status_code == 200
    task = Task.model_validate(fhir_get(client, f"/fhir/r4/Task/{referral['id']}", headers).json())
    assert task.status == "in-progress" and task.businessStatus.coding[0].code == "5.1.1"
    assert [str(o.valueDate) for o in task.output if o.valueDate] == [booked_for]

    done = report(
        client,
        report_link(settings),
        outcome="completed",
        clearance="precautions",
        areas_to_avoid="left calf",
        pressure_limit="light pressure only",
    )
    assert done.status_code == 200
    task = Task.model_validate(fhir_get(client, f"/fhir/r4/Task/{referral['id']}", headers).json())
    assert task.status == "completed" and task.businessStatus.coding[0].code == "7.0"
    clearance = next(o for o in task.output if o.type.text == "Massage clearance")
    assert clearance.valueCodeableConcept.coding[0].code == "precautions"
    assert "left calf" in clearance.valueCodeableConcept.text
    outcomes = [o.valueCodeableConcept.coding[0].code for o in task.output if o.type.text == "Outcome"]
    assert outcomes == ["booked", "completed"]


def test_searches_by_last_updated_and_focus_page_through_every_match(client: TestClient, settings) -> None:
    headers = login(client)
    before = datetime.now(UTC) - timedelta(seconds=1)
    made = [new_referral(client, headers)["id"] for _ in range(3)]

    seen: list[str] = []
    url = "/fhir/r4/ServiceRequest"
    params: dict[str, object] = {"_lastUpdated": f"ge{before.isoformat()}", "_count": 2}
    while url:
        bundle = Bundle.model_validate(fhir_get(client, url, headers, **params).json())
        assert bundle.type == "searchset" and bundle.total == 3
        seen += [entry.resource.id for entry in bundle.entry or []]
        following = [link.url for link in bundle.link if link.relation == "next"]
        url, params = (relative(following[0]), {}) if following else ("", {})
    assert sorted(seen) == sorted(made)

    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert fhir_get(client, "/fhir/r4/ServiceRequest", headers, _lastUpdated=f"gt{later}").json()["total"] == 0

    tasks = Bundle.model_validate(fhir_get(client, "/fhir/r4/Task", headers, focus=f"ServiceRequest/{made[1]}").json())
    assert tasks.total == 1 and tasks.entry[0].resource.id == made[1]
    assert tasks.entry[0].resource.status == "requested"


def test_the_last_decline_is_the_failed_task_status_reason(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers, partner_ids=["gp1"])
    flush(client)
    path = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1])
    token = csrf(client.get(path).text)
    answered = client.post(
        path, data={"decision": "decline", "reason": "no_capacity", "note": "Full until March", "_csrf_token": token}
    )
    assert answered.status_code == 200
    task = Task.model_validate(fhir_get(client, f"/fhir/r4/Task/{referral['id']}", headers).json())
    assert task.status == "failed" and task.businessStatus.coding[0].code == "4.0"
    assert task.statusReason.coding[0].code == "no_capacity" and task.statusReason.text == "Full until March"


def test_staff_only_and_every_error_is_an_operation_outcome(client: TestClient, settings) -> None:
    anonymous = client.get("/fhir/r4/Task")
    assert anonymous.status_code == 401
    assert OperationOutcome.model_validate(anonymous.json()).issue[0].code == "login"

    headers = login(client)
    missing = fhir_get(client, "/fhir/r4/ServiceRequest/no-such-referral", headers)
    assert missing.status_code == 404
    assert OperationOutcome.model_validate(missing.json()).issue[0].code == "not-found"

    bad = fhir_get(client, "/fhir/r4/ServiceRequest", headers, _lastUpdated="yesterday")
    assert bad.status_code == 400
    issue = OperationOutcome.model_validate(bad.json()).issue[0]
    assert issue.code == "invalid" and issue.expression == ["_lastUpdated"]

    forged = fhir_get(client, "/fhir/r4/Task", headers, cursor="not-a-cursor!")
    assert forged.status_code == 400 and OperationOutcome.model_validate(forged.json()).issue[0].expression == [
        "cursor"
    ]
    CapabilityStatement.model_validate(fhir_get(client, "/fhir/r4/metadata", headers).json())


def test_the_client_is_a_patient_the_referrals_point_at(client: TestClient, settings) -> None:
    headers = login(client)
    first = new_referral(client, headers)
    again = new_referral(client, headers, client={"id": first["client"]["id"]})
    other = new_referral(client, headers)  # the same name, inline: another client record
    assert other["client"]["id"] != first["client"]["id"]

    patient = Patient.model_validate(fhir_get(client, f"/fhir/r4/Patient/{first['client']['id']}", headers).json())
    assert patient.name[0].text == CLIENT["name"]
    assert [t.value for t in patient.telecom if t.system == "phone"] == ["+17275550142"]  # stored as E.164
    request = ServiceRequest.model_validate(fhir_get(client, f"/fhir/r4/ServiceRequest/{again['id']}", headers).json())
    assert request.subject.reference == f"Patient/{first['client']['id']}"

    mine = Bundle.model_validate(
        fhir_get(client, "/fhir/r4/ServiceRequest", headers, patient=f"Patient/{first['client']['id']}").json()
    )
    assert sorted(entry.resource.id for entry in mine.entry) == sorted([first["id"], again["id"]])

    found = Bundle.model_validate(fhir_get(client, "/fhir/r4/Patient", headers, name=CLIENT["name"]).json())
    assert {entry.resource.id for entry in found.entry} == {first["client"]["id"], other["client"]["id"]}
    short = fhir_get(client, "/fhir/r4/Patient", headers, name="Z")
    assert short.status_code == 400 and OperationOutcome.model_validate(short.json()).issue[0].expression == ["name"]
    assert fhir_get(client, "/fhir/r4/Patient/no-such-client", headers).status_code == 404
