"""A poison-proof spool and sweeper (issue 12, item 3): each spooled delivery is processed
on its own; one that fails for any reason but an outage goes to the dead letters (kept
with its error, listed, retried or discarded by an admin, alerted once); an outage stops
the drain; each sweep phase runs on its own and a failing one is named."""

from __future__ import annotations

import copy
import json

import pytest
from peewee import DataError

from bot.core import spool, telemetry
from bot.core.models import (
    AuditLog,
    Customer,
    InboundMessage,
    Message,
    OrderEvent,
    SpoolDeadLetter,
    State,
    utcnow,
)
from bot.core.signing import sign_hmac
from bot.extensions import services
from bot.intake import dead_letters
from bot.observability.alerts import AlertRules, check_once
from tests.conftest import ADMIN, SECRETS, VIEWER, basic_auth, load_payload

DEAD_LETTERS = "/admin/api/spool/dead-letters"


def woo_delivery(delivery_id: str, **changes) -> tuple[bytes, dict]:
    """A WooCommerce order.created delivery as the webhook spools it (raw body, headers)."""
    body = {**copy.deepcopy(load_payload("woocommerce/order_created")), **changes}
    raw = json.dumps(body).encode()
    headers = {
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Delivery-ID": delivery_id,
        "X-WC-Webhook-Signature": sign_hmac(SECRETS["woocommerce_webhook_secret"], raw, "base64"),
    }
    return raw, headers


def spool_woo(redis_conn, delivery_id: str, **changes) -> str:
    raw, headers = woo_delivery(delivery_id, **changes)
    return spool.put(redis_conn, "order:woocommerce", raw, headers)


def spool_interakt_message(redis_conn) -> str:
    raw = json.dumps(load_payload("interakt/webhooks")["received_text"]).encode()
    return spool.put(redis_conn, "whatsapp:interakt", raw, {})


def sweep():
    from jobs.sweep import sweep_once

    return sweep_once(services(), utcnow())


@pytest.fixture
def poisoned_spool(app, redis_conn):
    """Good deliveries around three poison ones: a body today's parser refuses (spooled
    by an older version), a source no longer enabled, and an entry not written by the
    spool at all."""
    spool_woo(redis_conn, "good-1", id=101)
    refused = spool_woo(redis_conn, "poison-currency", id=102, currency="RUPEE")
    spool.put(redis_conn, "order:magento", b"{}", {})
    redis_conn.xadd(spool.STREAM, {"something": "else"})
    spool_interakt_message(redis_conn)
    spool_woo(redis_conn, "good-2", id=103)
    return refused


def test_a_poison_spool_entry_is_dead_lettered_and_the_good_ones_are_stored(
    poisoned_spool, redis_conn
):
    result = sweep()

    assert result["spool_drained"] == 3 and result["spool_dead_lettered"] == 3
    assert result["failed_phases"] == []
    assert spool.size(redis_conn) == 0
    assert sorted(e.order.external_id for e in OrderEvent.select()) == ["101", "103"]
    assert InboundMessage.select().count() == 1
    letters = list(SpoolDeadLetter.select().order_by(SpoolDeadLetter.id))
    assert [row.kind for row in letters] == ["order:woocommerce", "order:magento", "unreadable"]
    refused = letters[0]
    assert refused.spool_id == poisoned_spool
    assert "currency" in refused.error and refused.attempts == 1
    assert json.loads(bytes(refused.body))["currency"] == "RUPEE"  # kept byte for byte
    assert "magento" in letters[1].error


def test_the_rest_of_the_sweep_runs_after_a_poison_entry(poisoned_spool, redis_conn):
    stranded = Message.create(
        phone="+919812345678",
        dedupe_key="stranded",
        kind="placed",
        state=State.QUEUED,
        created_at=utcnow(),
        updated_at=utcnow().replace(year=2020),
    )

    result = sweep()

    assert result["messages_requeued"] == 1, stranded
    assert {"receipts_requeued", "inbound_requeued", "crm_webhooks_requeued"} <= set(result)


def test_a_failing_sweep_phase_is_named_and_counted_and_the_others_still_run(
    app, redis_conn, monkeypatch
):
    import jobs.sweep

    def broken(svc, now, cutoff):
        raise DataError("value too long for type character varying(200)")

    phases = tuple((n, broken if n == "receipts" else p) for n, p in jobs.sweep.PHASES)
    monkeypatch.setattr(jobs.sweep, "PHASES", phases)
    spool_woo(redis_conn, "after-the-broken-phase", id=104)

    result = sweep()

    assert result["failed_phases"] == ["receipts"]
    assert result["spool_drained"] == 1
    assert {"messages_requeued", "inbound_requeued", "crm_webhooks_requeued"} <= set(result)
    assert "receipts_requeued" not in result
    counted = redis_conn.hgetall(telemetry.PREFIX + "sweep_phase_failures")
    assert counted == {b'{"phase": "receipts"}': b"1"}


def test_an_outage_stops_the_drain_and_the_entries_wait(app, redis_conn, database_down):
    spool_woo(redis_conn, "during-outage", id=105)

    result = sweep()

    assert "spool" in result["failed_phases"]
    assert spool.size(redis_conn) == 1  # waiting, not dead-lettered
    database_down.end()
    assert SpoolDeadLetter.select().count() == 0
    assert sweep()["spool_drained"] == 1
    assert OrderEvent.select().count() == 1


def test_a_spooled_delivery_that_fails_in_its_write_is_spooled_then_dead_lettered(
    client, redis_conn, monkeypatch
):
    """The failure the issue saw: the database refuses the write itself. The sender
    (which never redelivers) hears 202, and the delivery is kept, not retried forever."""
    from bot.intake import outbox

    def refused(*args, **kwargs):
        raise DataError("value too long for type character varying(200)")

    monkeypatch.setattr(outbox, "accept_order_event", refused)
    raw, headers = woo_delivery("refused-write")
    response = client.post(
        "/webhooks/orders/woocommerce", data=raw, headers=headers, content_type="application/json"
    )
    assert response.status_code == 202 and response.get_json() == {"spooled": True}

    result = sweep()

    assert result["spool_dead_lettered"] == 1 and result["failed_phases"] == []
    assert "value too long" in SpoolDeadLetter.get().error
    assert sweep()["spool_dead_lettered"] == 0  # moved once, not every sweep


def test_admins_list_dead_letters_without_their_bodies(client, poisoned_spool):
    sweep()

    response = client.get(DEAD_LETTERS, headers=VIEWER)

    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [item["kind"] for item in items] == ["order:woocommerce", "order:magento", "unreadable"]
    assert "currency" in items[0]["error"] and items[0]["attempts"] == 1
    assert "body" not in items[0] and items[0]["body_bytes"] > 0
    assert response.get_json()["next_after"] is None
    assert client.get(DEAD_LETTERS, headers=basic_auth("admin", "wrong")).status_code == 401


def test_a_retried_dead_letter_is_stored_and_removed(client, app, redis_conn):
    # A delivery a since-fixed bug refused: kept as it came.
    raw, headers = woo_delivery("fixed-later", id=106)
    entry = spool.Entry(id="1764000000000-0", kind="order:woocommerce", body=raw, headers=headers)
    dead_letters.record(entry, RuntimeError("a bug, since fixed"), utcnow())
    letter = SpoolDeadLetter.get()

    response = client.post(f"{DEAD_LETTERS}/{letter.id}/retry", headers=ADMIN)

    assert response.status_code == 200 and response.get_json() == {"retried": letter.id}
    assert SpoolDeadLetter.select().count() == 0
    assert OrderEvent.get().order.external_id == "106"
    assert Customer.select().count() == 1
    audit = AuditLog.get(AuditLog.action == "retry_dead_letter")
    assert audit.actor == "admin" and audit.details["ok"] is True


def test_a_retry_that_fails_again_is_a_409_and_the_letter_stays(client, poisoned_spool):
    sweep()
    letter = SpoolDeadLetter.get(SpoolDeadLetter.spool_id == poisoned_spool)

    response = client.post(f"{DEAD_LETTERS}/{letter.id}/retry", headers=ADMIN)

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "retry_failed"
    assert "currency" in response.get_json()["error"]["message"]
    assert SpoolDeadLetter.get_by_id(letter.id).attempts == 2


def test_a_discarded_dead_letter_is_gone_and_audited(client, poisoned_spool):
    sweep()
    letter = SpoolDeadLetter.get(SpoolDeadLetter.spool_id == poisoned_spool)

    response = client.delete(f"{DEAD_LETTERS}/{letter.id}", headers=ADMIN)

    assert response.status_code == 200 and response.get_json() == {"deleted": [letter.id]}
    assert SpoolDeadLetter.get_or_none(SpoolDeadLetter.id == letter.id) is None
    audit = AuditLog.get(AuditLog.action == "discard_dead_letter")
    assert audit.details["kind"] == "order:woocommerce"
    assert client.delete(f"{DEAD_LETTERS}/{letter.id}", headers=ADMIN).status_code == 404


@pytest.mark.parametrize("method", ["post", "delete"])
def test_viewers_and_cross_site_requests_cannot_retry_or_discard(client, poisoned_spool, method):
    sweep()
    letter = SpoolDeadLetter.select().first()
    url = f"{DEAD_LETTERS}/{letter.id}" + ("/retry" if method == "post" else "")

    as_viewer = getattr(client, method)(url, headers=VIEWER)
    cross_site = getattr(client, method)(url, headers=basic_auth("admin", "correct horse"))

    assert as_viewer.status_code == 403
    assert cross_site.status_code == 403
    assert cross_site.get_json()["error"]["code"] == "cross_site_request"
    assert SpoolDeadLetter.get_by_id(letter.id).attempts == 1


def test_dead_letters_alert_once_per_burst_and_resolve_when_handled(client, redis_conn):
    svc = services()
    sweep()  # nothing yet: no alert
    assert check_once(svc.redis, svc.queues, AlertRules(), utcnow()) == []

    spool_woo(redis_conn, "p1", id=201, currency="RUPEE")
    spool_woo(redis_conn, "p2", id=202, currency="RUPEE")
    sweep()
    first = check_once(svc.redis, svc.queues, AlertRules(), utcnow())
    spool_woo(redis_conn, "p3", id=203, currency="RUPEE")
    sweep()
    sweep()
    later = check_once(svc.redis, svc.queues, AlertRules(), utcnow())

    assert [(n.key, n.kind) for n in first] == [("spool_dead_letters", "firing")]
    assert "2 delivery" in first[0].text
    assert later == []  # still the same alert: not one per sweep or per letter
    for letter in SpoolDeadLetter.select():
        client.delete(f"{DEAD_LETTERS}/{letter.id}", headers=ADMIN)
    cleared = check_once(svc.redis, svc.queues, AlertRules(), utcnow())
    assert [(n.key, n.kind) for n in cleared] == [("spool_dead_letters", "resolved")]


def test_metrics_count_the_dead_letters(client, poisoned_spool, app):
    sweep()
    token = app.config.get("METRICS_TOKEN") or services().settings.metrics_token
    headers = {"Authorization": f"Bearer {token}"} if token else ADMIN

    response = client.get("/metrics", headers=headers)

    assert "dakiya_spool_dead_letters 3.0" in response.get_data(as_text=True)
