"""Genuine webhook bodies from public client libraries' own test fixtures
(tests/payloads/meta/real/README.md), each posted correctly signed: none is refused,
none fails, and every item Dakiya can recognise in it is stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.models import (
    ConsentEvent,
    InboundMessage,
    InboxEntry,
    SpoolDeadLetter,
    StatusEvent,
    TemplateCategory,
    UnhandledUpdate,
)
from tests.conftest import PAYLOADS, SECRETS, load_payload
from tests.webhooks.test_whatsapp import post_interakt

REAL_META = sorted((PAYLOADS / "meta" / "real").glob("*.json"))
ACCOUNT_FIELDS = {
    "account_update",
    "phone_number_quality_update",
    "message_template_status_update",
    "business_username_updates",
    "business_username_update",
}
CATEGORY_FIELD = "template_category_update"


def post_raw(client, sign, path: Path):
    raw = path.read_bytes()  # byte for byte as published
    return client.post(
        "/webhooks/whatsapp/meta",
        data=raw,
        headers={"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)},
        content_type="application/json",
    )


def recognisable(body: dict) -> dict[str, list]:
    """What a reader of Meta's documentation finds in `body`, walked independently of
    the parser: messages from a phone number, receipts, preferences, other fields."""
    found: dict[str, list] = {
        "messages": [],
        "unreadable_messages": [],
        "statuses": [],
        "preferences": [],
        "categories": [],
        "other": [],
    }
    for entry in body["entry"]:
        for change in entry["changes"]:
            field, value = change["field"], change["value"]
            if field not in {"messages", "user_preferences", CATEGORY_FIELD} | ACCOUNT_FIELDS:
                found["other"].append(field)
                continue
            if field == CATEGORY_FIELD and "correct_category" not in value:
                found["categories"].append(value["message_template_name"])  # completed
            if field in ACCOUNT_FIELDS | {CATEGORY_FIELD}:
                continue
            senders = {c.get("user_id"): c.get("wa_id") for c in value.get("contacts", [])}
            for message in value.get("messages", []):
                if message.get("type") == "system":
                    # A changed number or BSUID re-keys a known customer; any other
                    # system message is kept raw.
                    kind = message["system"].get("type")
                    if kind not in ("user_changed_number", "user_changed_user_id"):
                        found["unreadable_messages"].append(message["id"])
                    continue
                sender = message.get("from") or senders.get(message.get("from_user_id"))
                readable = (isinstance(sender, str) and sender.isdigit()) or bool(
                    message.get("from_user_id")
                )
                found["messages" if readable else "unreadable_messages"].append(message["id"])
            found["statuses"] += [s["id"] for s in value.get("statuses", [])]
            found["preferences"] += [
                p for p in value.get("user_preferences", []) if p["value"] in ("stop", "resume")
            ]
    return found


@pytest.mark.parametrize("path", REAL_META, ids=[p.stem for p in REAL_META])
def test_every_genuine_meta_payload_is_taken_and_its_items_stored(client, sign, run_jobs, path):
    body = json.loads(path.read_text())
    expected = recognisable(body)

    response = post_raw(client, sign, path)
    run_jobs()  # the workers take the kept delivery in

    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert InboxEntry.select().count() == 0 and SpoolDeadLetter.select().count() == 0
    stored_ids = {m.provider_message_id for m in InboundMessage.select()}
    assert set(expected["messages"]) <= stored_ids
    assert set(expected["statuses"]) <= {s.provider_message_id for s in StatusEvent.select()}
    assert ConsentEvent.select().count() == len(expected["preferences"])
    assert [row.template for row in TemplateCategory.select()] == expected["categories"]
    kept = [row.kind for row in UnhandledUpdate.select()]
    assert {f"change:{field}" for field in expected["other"]} <= set(kept)
    # A message from no phone number and no BSUID (a placeholder) is kept, not lost.
    assert kept.count("message") >= len(expected["unreadable_messages"])


def test_the_replay_covers_dozens_of_genuine_payloads_of_every_family():
    families = {p.stem.split("__")[1] for p in REAL_META}
    assert len(REAL_META) >= 50
    assert {"message", "message_status", "user_marketing_preferences", "account_update"} <= (
        families
    )


INTERAKT = load_payload("interakt/webhooks")


@pytest.mark.parametrize("name", sorted(INTERAKT))
def test_every_interakt_sample_is_taken_and_stored_or_kept(client, sign, run_jobs, name):
    response = post_interakt(client, sign, INTERAKT[name])
    run_jobs()

    assert response.status_code == 200
    assert InboxEntry.select().count() == 0 and SpoolDeadLetter.select().count() == 0
    stored = InboundMessage.select().count() + StatusEvent.select().count()
    assert stored + UnhandledUpdate.select().count() == 1
