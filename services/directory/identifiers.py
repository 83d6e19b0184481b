"""Stable ids for what the standards APIs (Open Referral HSDS, FHIR) derive from partners: the
practice a partner belongs to, its location, the service at that location, and the smaller
objects nested in them. The same partner always yields the same ids, so a harvest is stable and
another directory can merge a second harvest into the first. Every id is a UUID, as HSDS asks.

The rules are public and fixed for good: changing one would give every published object a new id.
"""

from __future__ import annotations

import uuid

# Fixed for good (generated once): the namespace of every name-based (uuid5) id below.
NAMESPACE = uuid.UUID("5f0c8f3e-2a41-4f7e-9d38-6b1c0e52a9d4")
# Bits of a random (version 4) UUID that say so: the version nibble and the variant bits.
_VERSION_AND_VARIANT = (0xF << 76) | (0x3 << 62)


def derived_id(kind: str, key: str) -> str:
    """A name-based id for ``kind`` (``"phone"``, ``"taxonomy_term"``…) of ``key``: one way only,
    for objects nobody reads by id on their own."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def practice_id(*, practice: str, partner_id: str) -> str:
    """The id of the practice a partner names: partners naming the same practice (whatever its
    case and spacing) share it; a partner without a practice is a practice of its own."""
    name = " ".join(practice.split()).casefold()
    return derived_id("practice", name) if name else derived_id("practice-of", partner_id)


def twin_id(partner_id: str, kind: str) -> str:
    """The id of the partner's one ``kind`` (``"location"``, ``"service_at_location"``): the
    partner's UUID with fixed bits flipped, so :func:`partner_of` turns it back into the partner's
    id and a read by id needs no lookup table. A random UUID stays a valid random UUID."""
    try:
        number = uuid.UUID(partner_id).int
    except ValueError:  # Ids Handoff hands out are UUIDs; anything else gets a one-way id.
        return derived_id(kind, partner_id)
    return str(uuid.UUID(int=number ^ _mask(kind)))


def partner_of(twin: str, kind: str) -> str | None:
    """The id of the partner whose ``kind`` is ``twin`` (None for anything but a UUID written
    as this module writes them)."""
    try:
        number = uuid.UUID(twin).int
    except ValueError:
        return None
    if str(uuid.UUID(int=number)) != twin:  # one spelling per object: no upper case, braces or urn:
        return None
    return str(uuid.UUID(int=number ^ _mask(kind)))


def _mask(kind: str) -> int:
    return uuid.uuid5(NAMESPACE, f"twin:{kind}").int & ~_VERSION_AND_VARIANT
