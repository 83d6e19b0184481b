"""Bytes on the wire for every message: tagged msgspec JSON, never pickle."""

from __future__ import annotations

import msgspec

from shared.messages import Message

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)


class UndecodableMessage(Exception):
    """A payload that is not a known, valid message. Raised, never swallowed, so the job lands
    in RQ's failed registry with this reason."""


def encode(message: Message) -> str:
    # A str rather than bytes because RQ's JSON serializer carries job arguments as JSON.
    return _encoder.encode(message).decode()


def decode(payload: str | bytes) -> Message:
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise UndecodableMessage(f"cannot decode message: {exc}") from None
