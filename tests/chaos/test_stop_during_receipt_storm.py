"""A customer's STOP in the middle of a receipt storm (issue 19, item 3): thousands of
signed receipts, one per POST, are kept and wait for the workers; a STOP posted behind
them is taken in ahead of them, confirmed, and from then on nothing else reaches that
customer, while the receipts are still being applied and the storm goes on."""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bot.core.models import Customer, InboxEntry, Message, Reason, State, StatusEvent
from bot.core.signing import sign_hmac
from bot.delivery.sending import OPT_OUT_CONFIRMATION
from bot.intake.inbox import Lane
from tests.chaos.system import Shop, eventually, order_event
from tests.conftest import SECRETS, load_payload
from tests.fakes.provider_server import status_webhook

BACKLOG = 3000
#: order_event("stop", 7) and ("stop", 8)'s customers, known to Dakiya by their STOPs.
FIRST, SECOND = "919700000007", "919700000008"


def signed_meta(body: dict) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = "sha256=" + sign_hmac(SECRETS["meta_app_secret"], raw)
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def receipt(n: int) -> tuple[bytes, dict[str, str]]:
    """One status, as Meta posts them: for a message of another number (none Dakiya sent)."""
    status = {"id": f"wamid.STORM{n}", "status": ("sent", "delivered", "read")[n % 3]}
    status.update(timestamp=str(int(time.time())), recipient_id="919800000001")
    return signed_meta(status_webhook([status]))


def post_stop(url: str, phone: str) -> int:
    body = copy.deepcopy(load_payload("meta/messages")["text"])
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = phone
    value["messages"][0].update(
        {"from": phone, "id": f"wamid.STOP{phone}", "timestamp": str(int(time.time()))}
    )
    value["messages"][0]["text"] = {"body": "STOP"}
    raw, headers = signed_meta(body)
    return requests.post(url, data=raw, headers=headers, timeout=15).status_code


def post_receipts(url: str, numbers, threads: int = 8) -> list[int]:
    local = threading.local()

    def one(n: int) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        raw, headers = receipt(n)
        return session.post(url, data=raw, headers=headers, timeout=15).status_code

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, numbers))


def opted_out(phone: str) -> Customer | None:
    return Customer.get_or_none(
        (Customer.phone == "+" + phone) & (Customer.opted_out == True)  # noqa: E712
    )


def receipts_waiting() -> int:
    return InboxEntry.select().where(InboxEntry.lane == Lane.RECEIPTS).count()


def test_a_stop_during_a_receipt_storm_is_honoured_ahead_of_the_receipts(make_system, provider):
    provider.configure(latency=0.05)
    system = make_system(provider.url)
    shop = Shop(system.start_web())
    url = f"{shop.web_url}/webhooks/whatsapp/meta"
    # The storm: every receipt answered 200 at once, and kept (no worker runs yet).
    assert set(post_receipts(url, range(BACKLOG))) == {200}
    assert post_stop(url, FIRST) == 200
    assert InboxEntry.select().count() == BACKLOG + 1

    storming = threading.Event()
    storming.set()

    def storm_on() -> None:  # more receipts keep coming while the worker catches up
        for start in itertools.count(BACKLOG, 100):
            if not storming.is_set():
                return
            post_receipts(url, range(start, start + 100), threads=2)

    storm = threading.Thread(target=storm_on)
    storm.start()
    try:
        system.start_worker()  # one worker: what it does first is what comes first
        eventually(lambda: opted_out(FIRST), 60, "the first STOP to be taken in", every=0.02)
        # Taken in ahead of the 3,000 receipts posted before it.
        assert StatusEvent.select().count() == 0

        # A STOP while the receipts are being applied: the drain steps aside for it.
        eventually(lambda: StatusEvent.select().exists(), 60, "receipts to be applied", 0.01)
        assert post_stop(url, SECOND) == 200
        eventually(lambda: opted_out(SECOND), 60, "the second STOP to be taken in", every=0.02)
        assert receipts_waiting() > 0, "the STOP waited for the whole receipt backlog"

        # Orders after the STOPs: accepted, and never sent to the customers.
        shop.post([order_event("stop", n) for n in (7, 8)])
        system.start_worker()
        eventually(
            lambda: all(
                Message.get_by_id(mid).state == State.SUPPRESSED for mid in shop.message_ids
            ),
            60,
            "the later order messages to be suppressed",
        )
    finally:
        storming.clear()
        storm.join(60)

    later = set(shop.message_ids)
    assert len(later) == 2
    assert {Message.get_by_id(mid).reason for mid in later} == {Reason.OPTED_OUT}
    for phone in (FIRST, SECOND):

        def sent_to(phone=phone) -> list:
            return [s for s in provider.sends() if (s.to or "").lstrip("+") == phone]

        # The last message the customer got is the STOP's confirmation.
        eventually(lambda: sent_to(), 60, f"the confirmation to {phone} to be sent")
        last = max(sent_to(), key=lambda s: s.arrived)
        assert Message.get_by_id(last.message_id).kind == OPT_OUT_CONFIRMATION
        assert not later & {s.message_id for s in sent_to()}
    # And the storm was taken in in the end: nothing kept is left behind.
    eventually(lambda: InboxEntry.select().count() == 0, 120, "the receipts to be taken in")
