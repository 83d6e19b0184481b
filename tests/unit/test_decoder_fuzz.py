"""Property-based fuzzing (hypothesis) of what reads anonymous input before any rule does: the
search cursor, JSON request bodies and form bodies. Whatever bytes arrive, the answer is a value
or the caller's 4xx, never an unhandled error (issue 16, item 6). In-process: a small Litestar app
with Handoff's request class and error handlers, no server, no I/O."""

from __future__ import annotations

import base64
import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar, post
from litestar.params import JSONBody, URLEncodedBody
from litestar.testing import TestClient

from services.directory.search import After, InvalidSearch, decode_cursor, encode_cursor
from shared import bodies, web

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# JSON-shaped text, often nested deep, plus arbitrary bytes.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
raw_bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=1, max_value=20_000).map(lambda depth: b"[" * depth + b"]" * (depth // 2)),
    st.integers(min_value=1, max_value=5_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)


@given(cursor=st.one_of(st.text(max_size=300), raw_bodies.map(lambda raw: base64.urlsafe_b64encode(raw).decode())))
@FUZZ
def test_any_cursor_is_a_position_or_an_invalid_search(cursor: str) -> None:
    for near in (False, True):
        try:
            position = decode_cursor(cursor, near=near)
        except InvalidSearch as refused:
            assert refused.field == "cursor"
        else:
            assert position is None or isinstance(position, After)


@given(kind=st.sampled_from(["name", "distance"]), name=st.text(), distance=st.floats(0, 1e6), pid=st.text())
@FUZZ
def test_every_cursor_handed_out_reads_back(kind: str, name: str, distance: float, pid: str) -> None:
    position = After(kind, name if kind == "name" else distance, pid)
    assert decode_cursor(encode_cursor(position), near=kind == "distance") == position


class Body(msgspec.Struct, kw_only=True):
    email: str
    tags: list[str] = []


@post("/json", sync_to_thread=False)
def take_json(data: JSONBody[Body]) -> dict:
    return {"email": data.email}


class Form(msgspec.Struct, kw_only=True):
    email: str = ""


@post("/form", sync_to_thread=False)
def take_form(data: URLEncodedBody[Form]) -> dict:
    return {"email": data.email}


APP = Litestar(
    [take_json, take_form], request_class=bodies.Request, exception_handlers=web.exception_handlers, debug=False
)


@given(body=raw_bodies)
@FUZZ
def test_any_json_body_is_read_or_refused_with_a_4xx(body: bytes) -> None:
    with TestClient(APP) as client:
        answer = client.post("/json", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code in (201, 400, 422), (answer.status_code, body[:80])
    assert set(answer.json()) >= ({"email"} if answer.status_code == 201 else {"status_code", "detail", "extra"})


@given(body=st.one_of(st.binary(max_size=1000), st.dictionaries(st.text(), st.text()).map(lambda d: _urlencoded(d))))
@FUZZ
def test_any_form_body_is_read_or_refused_with_a_4xx(body: bytes) -> None:
    with TestClient(APP) as client:
        answer = client.post("/form", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code in (201, 400, 422), (answer.status_code, body[:80])


def _urlencoded(fields: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()
