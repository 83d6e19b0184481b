"""Message contracts: round trips, and schema evolution in both directions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import get_args

import msgspec
import pytest

from shared import codec
from shared.messages import (
    Address,
    EmailContext,
    EmailDelivery,
    EmailKind,
    Location,
    Message,
    PartnerChanged,
    PartnerContact,
    PartnersChanged,
    PartnerSnapshot,
    SendEmail,
)

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
SNAPSHOT = PartnerSnapshot(
    id="p1",
    slug="dr-ana-gomez",
    name="Dr. Ana Gomez",
    category="primary_care",
    email="ana@example.org",
    status="active",
    phone="+17275550100",
    address=Address(line1="1 Main St", city="St. Petersburg", state="FL", postal_code="33701"),
    location=Location(lat=27.77, lon=-82.64),
    languages=["en", "es"],
    telehealth=True,
)
EXAMPLES: list[Message] = [
    PartnerChanged(partner=SNAPSHOT, version=3, changed_at=NOW),
    PartnersChanged(changes=[PartnerChanged(partner=SNAPSHOT, version=v, changed_at=NOW) for v in (4, 5)]),
    SendEmail(
        notification_id="n1",
        kind="offer",
        to="ana@example.org",
        referral_id="r1",
        context=EmailContext(
            partner_name="Dr. Ana Gomez",
            reference="HX-ABCD2345",
            urgency="urgent",
            action_url="http://x/respond/t",
            expires_at=NOW,
        ),
    ),
    EmailDelivery(notification_id="n1", outcome="sent", at=NOW, referral_id="r1"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    assert codec.decode(codec.encode(message)) == message


def test_messages_are_tagged() -> None:
    tags = [msgspec.json.decode(codec.encode(m))["type"] for m in EXAMPLES]
    assert tags == ["partner_changed", "partners_changed", "send_email", "email_delivery"]


# A future version of a message: one new field, with a default, as the evolution rules require.
class PartnerSnapshotV2(PartnerSnapshot, kw_only=True, frozen=True):
    pronouns: str = ""


class PartnerChangedV2(msgspec.Struct, kw_only=True, frozen=True, tag="partner_changed"):
    partner: PartnerSnapshotV2
    version: int
    changed_at: datetime
    changed_by: str = ""


def test_old_reader_reads_new_message() -> None:
    snapshot = PartnerSnapshotV2(**msgspec.structs.asdict(SNAPSHOT), pronouns="she/her")
    newer = PartnerChangedV2(partner=snapshot, version=4, changed_at=NOW, changed_by="admin@clinic")
    read = codec.decode(msgspec.json.encode(newer))
    assert isinstance(read, PartnerChanged)
    assert read.partner == SNAPSHOT and read.version == 4


class PartnersChangedV2(msgspec.Struct, kw_only=True, frozen=True, tag="partners_changed"):
    changes: list[PartnerChangedV2]
    reason: str = ""


def test_old_reader_reads_a_new_batch_of_changes() -> None:
    snapshot = PartnerSnapshotV2(**msgspec.structs.asdict(SNAPSHOT), pronouns="she/her")
    newer = PartnersChangedV2(changes=[PartnerChangedV2(partner=snapshot, version=4, changed_at=NOW)], reason="import")
    read = codec.decode(msgspec.json.encode(newer))
    assert read == PartnersChanged(changes=[PartnerChanged(partner=SNAPSHOT, version=4, changed_at=NOW)])


def test_new_reader_reads_old_message() -> None:
    old = b'{"type":"send_email","notification_id":"n9","kind":"offer","to":"a@b.org","context":{}}'
    decoded = msgspec.json.decode(old, type=msgspec.json.Decoder(PartnerChangedV2 | SendEmail).type)
    assert decoded == SendEmail(notification_id="n9", kind="offer", to="a@b.org", context=EmailContext())


def test_a_delivery_report_carries_its_email_kind() -> None:
    report = EmailDelivery(notification_id="n1", outcome="failed", at=NOW, referral_id="r1", kind="offer_reminder")
    assert codec.decode(codec.encode(report)) == report


def test_new_reader_reads_a_delivery_report_from_before_kinds() -> None:
    old = b'{"type":"email_delivery","notification_id":"n1","outcome":"sent","at":"2026-11-23T15:30:00Z"}'
    assert codec.decode(old) == EmailDelivery(notification_id="n1", outcome="sent", at=NOW, kind=None)


def test_old_reader_reads_an_email_of_a_kind_it_does_not_know() -> None:
    # A sender that knows a kind this reader does not: the email still decodes, so the notifier
    # can report it failed ("unknown email kind") rather than drop it undecoded.
    newer = b'{"type":"send_email","notification_id":"n9","kind":"offer_v2","to":"a@b.org","context":{}}'
    read = codec.decode(newer)
    assert isinstance(read, SendEmail) and read.kind == "offer_v2"
    assert "offer_v2" not in get_args(EmailKind)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"type":"launch_rockets"}', b'{"type":"email_delivery","notification_id":1}', b"[]"],
)
def test_undecodable_payloads_raise_with_a_reason(payload: bytes) -> None:
    with pytest.raises(codec.UndecodableMessage, match="cannot decode message"):
        codec.decode(payload)


def test_email_context_has_no_field_for_client_data() -> None:
    fields = set(EmailContext.__struct_fields__)
    assert not {f for f in fields if "client" in f or "reason" in f or "note" in f}


class OldContext(msgspec.Struct, kw_only=True):
    """An email context as a reader from before ``next_step`` knows it."""

    reference: str = ""


class OldSendEmail(msgspec.Struct, kw_only=True, tag="send_email"):
    notification_id: str
    kind: str
    to: str
    context: OldContext


def test_the_next_step_round_trips_and_an_old_reader_ignores_it() -> None:
    """Issue 12: the therapist's email says who makes the next call. The field is the
    therapist's choice (a Literal), so it can carry nothing about the client."""
    email = SendEmail(
        notification_id="n1",
        kind="referral_accepted",
        to="tess@clinic.example",
        context=EmailContext(reference="HX-1", next_step="client_contacts_partner"),
    )
    assert codec.decode(codec.encode(email)) == email

    old = msgspec.json.decode(codec.encode(email), type=OldSendEmail)
    assert old.context.reference == "HX-1"
    # And a new reader reads an old context, without the field.
    assert (
        codec.decode(
            b'{"type":"send_email","notification_id":"n1","kind":"referral_accepted","to":"a@b.org","context":{}}'
        ).context.next_step
        == ""
    )
    with pytest.raises(codec.UndecodableMessage):
        codec.decode(
            b'{"type":"send_email","notification_id":"n1","kind":"referral_accepted","to":"a@b.org",'
            b'"context":{"next_step":"Zelda Marchbanks 727-555-0199"}}'
        )


# The partner snapshot as it was before the listing's capacity "until" day and licence expiry.
class PartnerSnapshotBeforeListing(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    slug: str
    name: str
    category: str
    email: str
    status: str
    accepting_new_clients: str = "yes"


class PartnerChangedBeforeListing(msgspec.Struct, kw_only=True, frozen=True, tag="partner_changed"):
    partner: PartnerSnapshotBeforeListing
    version: int
    changed_at: datetime


def test_a_snapshot_carries_the_capacity_day_and_the_licence_expiry() -> None:
    snapshot = msgspec.structs.replace(
        SNAPSHOT, accepting_new_clients="no", accepting_until=date(2027, 1, 15), licence_expires_on=date(2027, 6, 30)
    )
    message = PartnerChanged(partner=snapshot, version=7, changed_at=NOW)
    assert codec.decode(codec.encode(message)) == message
    wire = msgspec.json.decode(codec.encode(message))["partner"]
    assert (wire["accepting_until"], wire["licence_expires_on"]) == ("2027-01-15", "2027-06-30")


def test_a_reader_from_before_the_listing_fields_reads_a_new_snapshot() -> None:
    snapshot = msgspec.structs.replace(
        SNAPSHOT, accepting_until=date(2027, 1, 15), licence_expires_on=date(2027, 6, 30)
    )
    old = msgspec.json.Decoder(PartnerChangedBeforeListing).decode(
        codec.encode(PartnerChanged(partner=snapshot, version=7, changed_at=NOW))
    )
    assert (old.partner.id, old.version) == ("p1", 7)


def test_a_snapshot_from_before_the_listing_fields_reads_as_open_ended_and_unlicensed_expiry() -> None:
    old = PartnerChangedBeforeListing(
        partner=PartnerSnapshotBeforeListing(
            id="p1", slug="s", name="N", category="primary_care", email="a@b.org", status="active"
        ),
        version=2,
        changed_at=NOW,
    )
    read = codec.decode(msgspec.json.encode(old))
    assert isinstance(read, PartnerChanged)
    assert read.partner.accepting_until is None and read.partner.licence_expires_on is None


def test_the_inbox_link_round_trips_and_an_old_reader_ignores_it() -> None:
    """Issue 14 item 5: every email to a partner links their inbox. A reader from before the
    field reads the email without it; a new reader reads an old email as having none."""
    email = SendEmail(
        notification_id="n1",
        kind="offer",
        to="ana@example.org",
        context=EmailContext(reference="HX-1", inbox_url="https://referrals.example/inbox/t"),
    )
    assert codec.decode(codec.encode(email)) == email
    old = msgspec.json.decode(codec.encode(email), type=OldSendEmail)
    assert old.context.reference == "HX-1"
    before = b'{"type":"send_email","notification_id":"n1","kind":"offer","to":"a@b.org","context":{"reference":"X"}}'
    assert codec.decode(before).context.inbox_url == ""


def test_an_email_to_a_client_carries_partners_and_its_language_and_old_readers_ignore_them() -> None:
    """Issue 12 item 4: a client's email lists partners (their public details only) and is
    written in the client's language. Neither field can hold anything about the client."""
    email = SendEmail(
        notification_id="n1",
        kind="client_partner_details",
        to="client@example.org",
        context=EmailContext(
            reference="HX-1",
            urgency="urgent",
            partners=[
                PartnerContact(
                    name="Dr. Ana Gomez",
                    phone="(727) 555-0100",
                    phone_link="+17275550100",
                    address=Address(line1="1 Main St", city="St. Petersburg", state="FL", postal_code="33701"),
                    hours="Mon-Fri 8-5",
                )
            ],
            language="es",
        ),
    )
    assert codec.decode(codec.encode(email)) == email
    assert msgspec.json.decode(codec.encode(email), type=OldSendEmail).context.reference == "HX-1"
    old = codec.decode(
        b'{"type":"send_email","notification_id":"n1","kind":"offer","to":"a@b.org","context":{"reference":"HX-1"}}'
    )
    assert isinstance(old, SendEmail)
    assert old.context.partners == [] and old.context.language == ""


def test_a_partner_contact_has_no_field_for_client_data() -> None:
    fields = set(PartnerContact.__struct_fields__)
    assert not {f for f in fields if "client" in f or "reason" in f or "note" in f}
    assert fields <= set(PartnerSnapshot.__struct_fields__) | {"phone_link"}
