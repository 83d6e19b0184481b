"""The directory's standards APIs over HTTP on a seeded directory (``handoff seed --demo``'s
partners, plus a few made here), judged by software nobody at Handoff wrote: every HSDS object
against the official HSDS 3.0 JSON Schemas (tests/data/hsds-3.0) with ``jsonschema``, every FHIR
answer parsed by ``fhir.resources``' R4B models, which refuse unknown elements. Then privacy (no
referral email, no internal field, no hidden partner anywhere), paging, errors and rate limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.healthcareservice import HealthcareService
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from litestar.testing import TestClient
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import update

from services.directory import fhir_search, seed
from services.directory.domain import PartnerDetails
from services.directory.fields import Address
from services.directory.service import PartnerService
from services.directory.storage import MIGRATIONS, partners
from services.directory.web.app import create_app
from shared import categories, database
from shared.config import Settings, load_settings

SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "hsds-3.0"
# Where the specification's OpenAPI document says its schemas live: relative $refs resolve here.
SCHEMA_BASE = "https://raw.githubusercontent.com/openreferral/specification/3.0/schema/"
CLINIC_EMAIL = "directory@clinic.example"
NPI = "1234567893"  # a valid check digit (CMS's own example number)
CONFIRMED_AT = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)  # 2026-11-19 at the clinic (New York)
FHIR_MODELS = {
    "PractitionerRole": PractitionerRole,
    "Practitioner": Practitioner,
    "Organization": Organization,
    "Location": Location,
    "HealthcareService": HealthcareService,
}
# Keys of the directory's own partner record that no public standards answer may carry.
INTERNAL_KEYS = {
    "email",
    "listed",
    "slug",
    "version",
    "response_window_days",
    "accepts_referrals_from",
    "search_text",
    "language_keys",
    "practice_id",
    "last_confirmed_at",
}


# --- the seeded directory -------------------------------------------------------------------------


class Seeded:
    def __init__(self, client: TestClient, emails: list[str], hidden: list[str], public: int, confirmed: str) -> None:
        self.client = client
        self.emails = emails  # every partner's referral address, hidden partners' too
        self.hidden = hidden  # ids of partners that must never appear
        self.public = public  # how many partners are listed and active
        self.confirmed = confirmed  # the partner whose listing the practice confirmed


def _settings(tmp_path: Path, db_url: str, redis_url: str, **overrides: Any) -> Settings:
    return load_settings(
        environ={},
        data_dir=str(tmp_path / "data"),
        directory_db_url=db_url,
        redis_url=redis_url,
        secret_key="standards-test-secret-of-at-least-32-bytes",
        clinic_email=CLINIC_EMAIL,
        relay_interval_seconds=60,
        **overrides,
    )


def _seed(db_url: str) -> tuple[list[str], list[str], str]:
    """The demo directory plus a partner with an NPI (its listing confirmed), an unlisted one and a
    paused one. Returns (every email, hidden ids, the confirmed partner's id)."""

    async def go() -> tuple[list[str], list[str], str]:
        engine = database.create_engine(db_url)
        try:
            directory = PartnerService(sessions=database.sessions(engine))
            await directory.import_rows(seed.demo_rows())
            address = Address(line1="200 Central Ave", city="St. Petersburg", state="FL", postal_code="33701")
            confirmed = await directory.create(
                details=PartnerDetails(
                    name="Dr. Nia Okonkwo",
                    category="neurology",
                    email="Nia.Private@okonkwo-neuro.example",
                    npi=NPI,
                    practice="Sunshine Family Medicine",  # shares a practice with a demo partner
                    address=address,
                    accepting_new_clients="waitlist",
                    languages=("English", "Igbo"),
                )
            )
            unlisted = await directory.create(
                details=PartnerDetails(
                    name="Hidden Unlisted", category="podiatry", email="unlisted@x.example", listed=False
                )
            )
            paused = await directory.create(
                details=PartnerDetails(name="Hidden Paused", category="dietitian", email="paused@x.example"),
                status="paused",
            )
            async with engine.begin() as connection:
                await connection.execute(
                    update(partners).where(partners.c.id == confirmed.id).values(last_confirmed_at=CONFIRMED_AT)
                )
            emails = [p.details.email async for p in directory.every_partner()]
            return emails, [unlisted.id, paused.id], confirmed.id
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, redis_server: Any) -> Iterator[Seeded]:
    tmp_path = tmp_path_factory.mktemp("standards")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'directory.db'}"
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    emails, hidden, confirmed = _seed(db_url)
    settings = _settings(tmp_path, db_url, redis_server.url, search_rate_limit=0)
    with TestClient(create_app(settings)) as client:
        yield Seeded(client, emails, hidden, public=len(seed.demo_rows()) + 1, confirmed=confirmed)


# --- HSDS: harvest and validate -------------------------------------------------------------------


def _registry() -> Registry:
    """Each vendored schema at the address the specification publishes it under (its ``$id``,
    which the files leave out), so that their relative ``$ref``s resolve among them."""
    resources = []
    for folder in ("", "compiled/"):
        for path in sorted((SCHEMAS / (folder or "schema")).glob("*.json")):
            uri = SCHEMA_BASE + folder + path.name
            contents = {**json.loads(path.read_text()), "$id": uri}
            resources.append((uri, Resource.from_contents(contents, DRAFT202012)))
    return Registry().with_resources(resources)


REGISTRY = _registry()
# What the specification's OpenAPI document answers each endpoint with (a list item, then an
# item read by id); HSDS 3.0 has no compiled location schema, so its per-object one serves.
ENDPOINTS = {
    "services": ("compiled/service_list.json", "compiled/service.json"),
    "organizations": ("compiled/organization_list.json", "compiled/organization.json"),
    "locations": ("location.json", "location.json"),
    "service_at_locations": ("compiled/service_at_location_list.json", "compiled/service_at_location.json"),
    "taxonomies": ("taxonomy.json", "taxonomy.json"),
    "taxonomy_terms": ("taxonomy_term.json", "taxonomy_term.json"),
}


def validator(schema: str) -> jsonschema.protocols.Validator:
    contents = REGISTRY.contents(SCHEMA_BASE + schema)
    cls = jsonschema.validators.validator_for(contents)
    return cls(contents, registry=REGISTRY, format_checker=cls.FORMAT_CHECKER)


def problems(schema: str, instance: Any) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator(schema).iter_errors(instance)]


def harvest(client: TestClient, endpoint: str, *, per_page: int = 7) -> list[dict]:
    """Every object of a list endpoint, page by page, checking the envelope as it goes."""
    found: list[dict] = []
    number = 1
    while True:
        answer = client.get(f"/hsds/{endpoint}", params={"page": number, "per_page": per_page})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page["page_number"] == number and page["size"] == len(page["contents"]) <= per_page
        assert page["first_page"] == (number == 1) and page["total_pages"] == -(-page["total_items"] // per_page)
        found += page["contents"]
        if page["last_page"]:
            assert page["total_items"] == len(found)
            return found
        number += 1


def test_a_whole_hsds_harvest_is_valid_against_the_official_schemas(seeded: Seeded) -> None:
    errors: dict[str, list[str]] = {}
    harvested: dict[str, int] = {}
    for endpoint, (list_schema, item_schema) in ENDPOINTS.items():
        items = harvest(seeded.client, endpoint)
        harvested[endpoint] = len(items)
        for item in items:
            errors[f"{endpoint} list {item['id']}"] = problems(list_schema, item)
            read = seeded.client.get(f"/hsds/{endpoint}/{item['id']}")
            assert read.status_code == 200, read.text
            assert read.json()["id"] == item["id"]
            errors[f"{endpoint}/{item['id']}"] = problems(item_schema, read.json())
    assert {where: found for where, found in errors.items() if found} == {}
    assert len(errors) == 2 * sum(harvested.values())
    vocabulary = len(categories.load())
    # The demo practices are all different but the added partner shares one; every partner has a place.
    assert harvested == {
        "services": seeded.public,
        "organizations": seeded.public - 1,
        "locations": seeded.public,
        "service_at_locations": seeded.public,
        "taxonomies": 2,
        "taxonomy_terms": vocabulary,
    }


def test_the_schema_check_reports_a_corrupted_object(seeded: Seeded) -> None:
    [service] = seeded.client.get("/hsds/services", params={"per_page": 1}).json()["contents"]
    full = seeded.client.get(f"/hsds/services/{service['id']}").json()
    assert problems("compiled/service.json", full) == []

    assert any("$.status" in problem for problem in problems("compiled/service.json", {**full, "status": "open"}))
    assert any("$.id" in problem for problem in problems("compiled/service.json", {**full, "id": "not-a-uuid"}))
    assert any("$.assurer_email" in p for p in problems("compiled/service.json", {**full, "assurer_email": "nobody"}))


def test_hsds_carries_the_confirmation_the_clinic_and_the_vocabulary(seeded: Seeded) -> None:
    confirmed = seeded.client.get(f"/hsds/services/{seeded.confirmed}").json()
    assert confirmed["assured_date"] == "2026-11-19"  # the clinic's date, not UTC's
    assert confirmed["assurer_email"] == CLINIC_EMAIL
    assert confirmed["wait_time"] == "New clients join a waiting list."
    others = harvest(seeded.client, "services", per_page=50)
    assert [s["id"] for s in others if "assured_date" in s] == [seeded.confirmed]

    terms = {t["code"]: t for t in harvest(seeded.client, "taxonomy_terms")}
    nucc, local = harvest(seeded.client, "taxonomies")
    assert terms["225100000X"]["taxonomy_id"] == nucc["id"] and nucc["uri"] == "http://nucc.org/provider-taxonomy"
    assert terms["personal_training"]["taxonomy_id"] == local["id"]
    assert terms["personal_training"]["name"] == "Personal training"

    pt = seeded.client.get("/hsds/services", params={"taxonomy_term_id": terms["225100000X"]["id"], "per_page": 50})
    assert {s["name"].split(":")[0] for s in pt.json()["contents"]} == {"Physical therapy"}
    assert pt.json()["total_items"] == sum(1 for row in seed.demo_rows() if row.details.category == "physical_therapy")
    unknown_term = seeded.client.get("/hsds/services", params={"taxonomy_term_id": "nope"}).json()
    assert (unknown_term["total_items"], unknown_term["empty"]) == (0, True)

    practice = confirmed["organization_id"]
    shared = seeded.client.get("/hsds/services", params={"organization_id": practice}).json()["contents"]
    assert len(shared) == 2 and {s["organization"]["name"] for s in shared} == {"Sunshine Family Medicine"}
    organization = seeded.client.get(f"/hsds/organizations/{practice}").json()
    assert sorted(s["id"] for s in organization["services"]) == sorted(s["id"] for s in shared)


def test_hsds_paging_out_of_range_is_an_empty_page_and_anyone_may_read(seeded: Seeded) -> None:
    for number in (0, -3, 999, 10**12):
        answer = seeded.client.get("/hsds/services", params={"page": number, "per_page": 10})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert (page["contents"], page["size"], page["empty"], page["total_items"]) == ([], 0, True, seeded.public)
        assert answer.headers["access-control-allow-origin"] == "*"
    refused = seeded.client.get("/hsds/services", params={"per_page": 0})
    assert refused.status_code == 400 and refused.json()["extra"][0]["key"] == "per_page"
    missing = seeded.client.get("/hsds/locations/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == "*"
    assert seeded.client.get("/hsds").json()["version"] == "3.0"


# --- FHIR: every search and read parses as R4B -------------------------------------------------------


def fhir_get(client: TestClient, url: str, **params: Any) -> Any:
    answer = client.get(url, params=params or None)
    assert answer.headers["content-type"].startswith("application/fhir+json"), answer.headers
    assert answer.headers["access-control-allow-origin"] == "*"
    return answer


def search_all(client: TestClient, resource: str, **params: Any) -> list[dict]:
    """Every match of a search, following ``next`` links; each Bundle parsed as R4B."""
    answer = fhir_get(client, f"/fhir/r4/{resource}", _count=10, **params)
    found: list[dict] = []
    while True:
        assert answer.status_code == 200, answer.text
        bundle = answer.json()
        Bundle.model_validate(bundle)
        assert bundle["type"] == "searchset"
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        found += [entry["resource"] for entry in bundle.get("entry", [])]
        if "next" not in links:
            assert bundle["total"] == len(found)
            return found
        answer = fhir_get(client, urlsplit(links["next"])._replace(scheme="", netloc="").geturl())


def newpatients(resource: dict) -> str:
    [extension] = [e for e in resource["extension"] if e["url"].endswith("/newpatients")]
    assert extension["url"] == "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/newpatients"
    [accepting] = [part for part in extension["extension"] if part["url"] == "acceptingPatients"]
    [coding] = accepting["valueCodeableConcept"]["coding"]
    assert coding["system"] == "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/AcceptingPatientsCS"
    return coding["code"]


def test_every_fhir_search_and_read_parses_as_r4b(seeded: Seeded) -> None:
    counts = {}
    for resource, model in FHIR_MODELS.items():
        found = search_all(seeded.client, resource)
        counts[resource] = len(found)
        for item in found:
            read = fhir_get(seeded.client, f"/fhir/r4/{resource}/{item['id']}")
            assert read.status_code == 200, read.text
            assert model.model_validate(read.json()).id == item["id"]
            if resource in ("PractitionerRole", "HealthcareService"):
                assert newpatients(read.json()) in {"newpt", "nopt"}
    assert counts == {
        "PractitionerRole": seeded.public,
        "Practitioner": seeded.public,
        "Organization": seeded.public - 1,
        "Location": seeded.public,
        "HealthcareService": seeded.public,
    }
    practitioner = fhir_get(seeded.client, f"/fhir/r4/Practitioner/{seeded.confirmed}").json()
    assert practitioner["identifier"] == [{"use": "official", "system": "http://hl7.org/fhir/sid/us-npi", "value": NPI}]
    assert [language["text"] for language in practitioner["communication"]] == ["English", "Igbo"]
    role = fhir_get(seeded.client, f"/fhir/r4/PractitionerRole/{seeded.confirmed}").json()
    assert newpatients(role) == "newpt"  # a waiting list: accepting, with the waitlist as a characteristic
    assert role["specialty"][0]["coding"][0] == {
        "system": "http://nucc.org/provider-taxonomy",
        "code": "2084N0400X",
        "display": "Psychiatry & Neurology, Neurology",
    }


def test_the_capability_statement_declares_exactly_what_is_implemented(seeded: Seeded) -> None:
    statement = fhir_get(seeded.client, "/fhir/r4/metadata").json()
    CapabilityStatement.model_validate(statement)
    [rest] = statement["rest"]
    declared = {r["type"]: [p["name"] for p in r["searchParam"]] for r in rest["resource"]}
    assert set(declared) == set(FHIR_MODELS)
    document = seeded.client.get("/schema/openapi.json").json()["paths"]
    for resource, names in declared.items():
        assert {i["code"] for i in next(r for r in rest["resource"] if r["type"] == resource)["interaction"]} == {
            "read",
            "search-type",
        }
        offered = {p["name"] for p in document[f"/fhir/r4/{resource}"]["get"].get("parameters", [])}
        assert offered == {*names, *fhir_search.PAGING}, resource


def test_fhir_searches_filter_and_page_as_declared(seeded: Seeded) -> None:
    physical = search_all(seeded.client, "PractitionerRole", specialty="http://nucc.org/provider-taxonomy|225100000X")
    assert physical and {r["specialty"][0]["coding"][0]["code"] for r in physical} == {"225100000X"}
    trainers = search_all(seeded.client, "HealthcareService", **{"specialty:text": "personal TRAINING"})
    assert len(trainers) == sum(1 for row in seed.demo_rows() if row.details.category == "personal_training")
    assert {r["specialty"][0]["text"] for r in trainers} == {"Personal training"}
    closed = search_all(seeded.client, "PractitionerRole", accepting="no")
    assert closed and {newpatients(r) for r in closed} == {"nopt"}
    spanish = search_all(seeded.client, "Practitioner", communication="spanish")
    assert spanish and all("Spanish" in {c["text"] for c in p["communication"]} for p in spanish)

    near = fhir_get(seeded.client, "/fhir/r4/Location", near="27.7723|-82.6386|5|km", _count=100).json()
    distances = [e["search"]["extension"][0]["valueDistance"]["value"] for e in near["entry"]]
    assert distances == sorted(distances) and all(d <= 5 for d in distances) and near["total"] == len(distances)
    wide = fhir_get(seeded.client, "/fhir/r4/Location", **{"near-zip": "33701|100|mi"}, _count=0).json()
    assert wide["total"] > near["total"] and wide.get("entry", []) == []

    ignored = fhir_get(seeded.client, "/fhir/r4/PractitionerRole", bogus="1", accepting="no").json()
    assert ignored["total"] == len(closed)
    assert "bogus" not in ignored["link"][0]["url"] and "accepting=no" in ignored["link"][0]["url"]


def test_fhir_errors_are_operation_outcomes(seeded: Seeded) -> None:
    cases = [
        ("/fhir/r4/PractitionerRole/nope", {}, 404, "not-found"),
        ("/fhir/r4/Location/00000000-0000-4000-8000-000000000000", {}, 404, "not-found"),
        ("/fhir/r4/Organization/nope", {}, 404, "not-found"),
        ("/fhir/r4/PractitionerRole?near=north", {}, 400, "invalid"),
        ("/fhir/r4/PractitionerRole?near=27|-82|900|km", {}, 400, "invalid"),
        ("/fhir/r4/Location?near-zip=00000", {}, 400, "invalid"),
        ("/fhir/r4/Practitioner?_count=lots", {}, 400, "invalid"),
        # Litestar alone reads these as 0 and 100; the schema says integer (found by the fuzzing).
        ("/fhir/r4/Organization?_count=0.0", {}, 400, "invalid"),
        ("/fhir/r4/Organization?_count=1e2", {}, 400, "invalid"),
        ("/fhir/r4/Practitioner?cursor=forged", {}, 400, "invalid"),
        ("/fhir/r4/PractitionerRole?bogus=1", {"Prefer": "handling=strict"}, 400, "invalid"),
    ]
    for url, headers, status, code in cases:
        answer = seeded.client.get(url, headers=headers)
        assert answer.status_code == status, (url, answer.text)
        assert answer.headers["content-type"].startswith("application/fhir+json"), url
        outcome = OperationOutcome.model_validate(answer.json())
        assert outcome.issue[0].code == code, url
    strict = seeded.client.get("/fhir/r4/PractitionerRole?bogus=1", headers={"Prefer": "handling=strict"}).json()
    assert strict["issue"][0]["expression"] == ["bogus"]
    count = seeded.client.get("/fhir/r4/Practitioner?_count=lots").json()
    assert count["issue"][0]["expression"] == ["_count"]
    assert seeded.client.get("/fhir/r4/Organization?_count=0.0").json()["issue"][0]["expression"] == ["_count"]
    # The same for every integer query parameter, the JSON API's too; a whole number still passes.
    limit = seeded.client.get("/api/v1/partners", params={"limit": "1.0"})
    assert limit.status_code == 400 and [e["key"] for e in limit.json()["extra"]] == ["limit"]
    assert seeded.client.get("/api/v1/partners", params={"limit": "2"}).status_code == 200


# --- privacy --------------------------------------------------------------------------------------


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


def test_no_referral_email_internal_field_or_hidden_partner_in_any_answer(seeded: Seeded) -> None:
    answers: list[Any] = []
    for endpoint in ENDPOINTS:
        for item in harvest(seeded.client, endpoint, per_page=100):
            answers.append(item)
            answers.append(seeded.client.get(f"/hsds/{endpoint}/{item['id']}").json())
    for resource in FHIR_MODELS:
        for item in search_all(seeded.client, resource):
            answers.append(item)
    answers.append(seeded.client.get("/fhir/r4/metadata").json())
    text = json.dumps(answers).casefold()

    assert len(seeded.emails) == seeded.public + len(seeded.hidden)
    leaked = [email for email in seeded.emails if email.casefold() in text]
    assert leaked == []
    assert _keys(answers) & INTERNAL_KEYS == set()
    assert [hidden for hidden in seeded.hidden if hidden in text] == []
    assert "hidden unlisted" not in text and "hidden paused" not in text
    assert CLINIC_EMAIL in text  # the clinic's own address is the one email published


# --- rate limits ----------------------------------------------------------------------------------


def test_standards_apis_count_against_the_anonymous_search_limit(tmp_path: Path, db_url: str, redis_url: str) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    with TestClient(create_app(_settings(tmp_path, db_url, redis_url, search_rate_limit=2))) as client:
        assert client.get("/hsds/services").status_code == 200
        assert client.get("/fhir/r4/metadata").status_code == 200
        hsds = client.get("/hsds/taxonomies")
        fhir = client.get("/fhir/r4/Practitioner")
    assert hsds.status_code == 429 and int(hsds.headers["retry-after"]) > 0
    assert hsds.json()["status_code"] == 429 and hsds.headers["access-control-allow-origin"] == "*"
    assert fhir.status_code == 429 and int(fhir.headers["retry-after"]) > 0
    assert OperationOutcome.model_validate(fhir.json()).issue[0].code == "throttled"


# --- the same queries on every database ---------------------------------------------------------------


def test_practices_pages_and_counts_on_every_database(tmp_path: Path, db_url: str, redis_url: str) -> None:
    """The grouping, numbered pages and radius counts are SQL: run them on PostgreSQL too."""
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    _, _, confirmed = _seed(db_url)
    public = len(seed.demo_rows()) + 1
    with TestClient(create_app(_settings(tmp_path, db_url, redis_url, search_rate_limit=0))) as client:
        organizations = harvest(client, "organizations", per_page=6)
        assert len(organizations) == public - 1 == len({o["id"] for o in organizations})
        names = [o["name"].casefold() for o in organizations]
        assert names == sorted(names)
        assert len(harvest(client, "services", per_page=9)) == public
        assert len(search_all(client, "Organization")) == public - 1
        near = fhir_get(client, "/fhir/r4/PractitionerRole", near="27.7723|-82.6386|5", _count=100).json()
        assert near["total"] == len(near["entry"]) > 0
        role = fhir_get(client, f"/fhir/r4/PractitionerRole/{confirmed}").json()
        shared = fhir_get(client, "/fhir/r4/PractitionerRole", organization=role["organization"]["reference"]).json()
        assert shared["total"] == 2
