"""Property: any correctly signed JSON body to a WhatsApp webhook is taken (200), every
item in it Dakiya can recognise is stored, and nothing else in it is lost: what cannot
be read is kept raw as an unhandled update.

Bodies are genuine payloads (tests/payloads/meta, .../meta/real, .../interakt) mutated
the way providers change: optional keys dropped, unknown keys and values added, values
of another type, unknown message types, fields and webhook types.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.errors import without_unstorable
from bot.core.models import (
    InboundMessage,
    InboxEntry,
    SpoolDeadLetter,
    StatusEvent,
    UnhandledUpdate,
)
from tests.conftest import PAYLOADS, load_payload
from tests.webhooks.test_whatsapp import post_interakt, post_meta

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def meta_bodies() -> list[dict]:
    bodies = [
        body
        for name in ("meta/messages", "meta/statuses", "meta/other")
        for body in load_payload(name).values()
    ]
    return bodies + [json.loads(p.read_text()) for p in sorted(PAYLOADS.glob("meta/real/*.json"))]


META_BODIES = meta_bodies()
#: Each example's own ids: a redelivery is deduplicated, which is not what is tested here.
TAGS = (f"p{n}" for n in itertools.count())
INTERAKT_BODIES = list(load_payload("interakt/webhooks").values())

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
#: Words a provider may start sending: new types, statuses, fields, preference values.
UNKNOWN_WORDS = st.sampled_from(
    [
        "hologram",
        "user_id_update",
        "business_username_update",
        "signup",
        "deleted",
        "warning",
        "played",
        "request_welcome",
        "message_api_flow_response",
        "Webhook Test",
        "",
    ]
)


def places(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `value`."""
    found = [prefix]
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found += places(child, (*prefix, key))
    return found


def at(value: Any, path: tuple) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated(draw, body: Any, keep: tuple = ()) -> Any:
    """`body` changed in 1 to 3 places, never above the path `keep`."""
    body = copy.deepcopy(body)
    for _ in range(draw(st.integers(1, 3))):
        spots = [p for p in places(at(body, keep), keep) if len(p) > len(keep)]
        if not spots:
            break
        path = draw(st.sampled_from(spots))
        parent, key = at(body, path[:-1]), path[-1]
        change = draw(st.sampled_from(["drop", "add", "retype", "unknown"]))
        if change == "drop":
            del parent[key]
        elif change == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.text(min_size=1, max_size=10))] = draw(json_values)
        elif change == "unknown" and isinstance(parent[key], str):
            parent[key] = draw(UNKNOWN_WORDS)
        else:
            kind = type(parent[key])
            parent[key] = draw(json_values.filter(lambda v, kind=kind: type(v) is not kind))
    return body


def fresh_ids(body: Any, tag: str) -> Any:
    """Give every message and receipt its own id, so examples never deduplicate."""
    for n, path in enumerate(places(body)):
        item = at(body, path)
        if len(path) >= 2 and path[-2] in ("messages", "statuses") and isinstance(item, dict):
            item["id"] = f"wamid.{tag}.{n}"
        if path == ("data", "message") and isinstance(item, dict):
            item["id"] = f"{tag}-{n}"
    return body


def items_in(body: Any, key: str) -> list[dict]:
    """The readable-looking messages or statuses of a Meta body (objects with an id)."""
    return [
        item
        for path in places(body)
        if len(path) >= 2 and path[-2] == key
        for item in [at(body, path)]
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]


def kept_raw(item: Any) -> bool:
    """`item`, or a part of the body holding it, is stored as an unhandled update."""
    item = without_unstorable(item)
    for row in UnhandledUpdate.select():
        if any(at(row.payload, p) == item for p in places(row.payload)):
            return True
    return False


def assert_taken_in() -> None:
    """The workers took every kept delivery in, and none had to be set aside."""
    assert InboxEntry.select().count() == 0
    assert SpoolDeadLetter.select().count() == 0


def good_meta_entry(tag: str) -> list[dict]:
    """A readable receipt and a readable message: the part of the POST left alone."""
    receipt = fresh_ids(load_payload("meta/statuses")["delivered"], f"{tag}.r")
    message = fresh_ids(load_payload("meta/messages")["text"], f"{tag}.m")
    return receipt["entry"] + message["entry"]


@PROPERTY
@given(data=st.data())
def test_any_signed_meta_body_is_taken_and_every_recognisable_item_stored(
    client, sign, run_jobs, data
):
    tag = next(TAGS)
    body = fresh_ids(copy.deepcopy(data.draw(st.sampled_from(META_BODIES), label="real")), tag)
    body = data.draw(mutated(body, keep=("entry",)), label="body")
    good = good_meta_entry(tag)
    body["entry"] = [*body["entry"], *good] if isinstance(body["entry"], list) else good

    response = post_meta(client, sign, body)
    run_jobs()

    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert_taken_in()
    stored = {m.provider_message_id for m in InboundMessage.select()}
    receipts = {s.provider_message_id for s in StatusEvent.select()}
    assert {f"wamid.{tag}.r.{n}" for n in range(99)} & receipts  # the good receipt
    assert {f"wamid.{tag}.m.{n}" for n in range(99)} & stored  # the good message
    for item in items_in(body, "messages"):
        assert item["id"] in stored or kept_raw(item), item
    for item in items_in(body, "statuses"):
        assert item["id"] in receipts or kept_raw(item), item


@PROPERTY
@given(data=st.data())
def test_any_signed_json_to_the_meta_webhook_is_taken_and_kept(client, sign, run_jobs, data):
    real = data.draw(st.sampled_from(META_BODIES), label="real")
    body = data.draw(st.one_of(json_values, mutated(real)), label="body")

    response = post_meta(client, sign, body)
    run_jobs()

    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.get_json() == {"accepted": True}
    assert_taken_in()
    if not (isinstance(body, dict) and body.get("object") == "whatsapp_business_account"):
        assert kept_raw(body)


@PROPERTY
@given(data=st.data())
def test_any_signed_interakt_body_is_stored_or_kept_raw(client, sign, run_jobs, data):
    tag = next(TAGS)
    real = fresh_ids(copy.deepcopy(data.draw(st.sampled_from(INTERAKT_BODIES))), tag)
    body = data.draw(st.one_of(mutated(real), json_values), label="body")

    response = post_interakt(client, sign, body)
    run_jobs()

    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert_taken_in()
    expected = without_unstorable(body)
    stored = [row.payload for model in (InboundMessage, StatusEvent) for row in model.select()]
    assert expected in stored or kept_raw(body)


def test_the_property_starts_from_genuine_payloads():
    assert len(META_BODIES) >= 80 and len(INTERAKT_BODIES) >= 9
    assert Path(PAYLOADS / "meta" / "real" / "README.md").exists()
