"""The fast fake provider itself: shapes as Dakiya's providers expect them, injected
errors classified as the real ones would be, counts per message id, receipts, subprocess."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bot.core.signing import verify_hmac
from bot.delivery.providers.base import ErrorKind, OutboundMessage, ProviderError, TemplateCall
from bot.delivery.providers.interakt import InteraktProvider
from bot.delivery.providers.meta import MetaProvider
from tests.fakes.provider_server import FakeProvider, provider_process


@pytest.fixture
def fake():
    with FakeProvider(latency=0.0, seed=1) as running:
        yield running


def outbound(message_id: int) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        to="+919812345678",
        template=TemplateCall(name="order_shipped", language="en", body=("Asha", "#1042")),
        callback_data=f"dakiya:{message_id}",
    )


def meta_post(url: str, message_id: int | None = 1, token: str = "t") -> requests.Response:
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "919812345678",
        "type": "template",
        "template": {"name": "order_shipped", "language": {"code": "en"}},
    }
    if message_id is not None:
        body["biz_opaque_callback_data"] = f"dakiya:{message_id}"
    headers = {"Authorization": f"Bearer {token}"}
    return requests.post(f"{url}/v23.0/106540352242922/messages", json=body, headers=headers)


def interakt_post(url: str, message_id: int = 1) -> requests.Response:
    body = {
        "fullPhoneNumber": "919812345678",
        "callbackData": f"dakiya:{message_id}",
        "type": "Template",
        "template": {"name": "order_shipped", "languageCode": "en", "bodyValues": ["Asha"]},
    }
    headers = {"Authorization": "Basic a2V5Og=="}
    return requests.post(f"{url}/v1/public/message/", json=body, headers=headers)


def test_meta_send_is_answered_with_the_cloud_api_shape_and_counted(fake):
    answer = meta_post(fake.url, message_id=7)
    assert answer.status_code == 200
    body = answer.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "919812345678", "wa_id": "919812345678"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    assert fake.counts() == {7: 1}
    (send,) = fake.sends()
    assert send.provider == "meta" and send.accepted and send.answered >= send.arrived


def test_interakt_send_is_answered_201_with_a_uuid(fake):
    answer = interakt_post(fake.url, message_id=3)
    assert answer.status_code == 201
    body = answer.json()
    assert body["result"] is True and body["message"] == "Message created successfully"
    assert len(body["id"]) == 36
    assert fake.accepted_counts() == {3: 1}


def test_dakiyas_own_providers_read_the_fake_as_the_real_apis(fake, settings):
    meta = MetaProvider(settings.replace(meta_api_base_url=fake.url))
    interakt = InteraktProvider(settings.replace(interakt_api_base_url=fake.url))
    assert meta.send(outbound(11)).provider_message_id.startswith("wamid.")
    assert interakt.send(outbound(12)).provider_message_id
    fake.script("130429", "131049", "429", "503")
    kinds = []
    for _ in range(4):
        with pytest.raises(ProviderError) as caught:
            meta.send(outbound(13))
        kinds.append((caught.value.code, caught.value.kind))
    assert kinds == [
        ("130429", ErrorKind.RATE_LIMITED),
        ("131049", ErrorKind.PERMANENT),
        ("131056", ErrorKind.RATE_LIMITED),
        ("2", ErrorKind.RETRY),
    ]
    assert fake.counts() == {11: 1, 12: 1, 13: 4}
    assert fake.accepted_counts() == {11: 1, 12: 1}


def test_a_wrong_token_is_refused_like_meta_refuses_it():
    with FakeProvider(latency=0.0, meta_token="right") as fake:
        answer = meta_post(fake.url, token="wrong")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == 190


def test_scripted_429_carries_retry_after_and_a_meta_error_body(fake):
    fake.script("429", "500", "ok")
    first, second, third = (meta_post(fake.url) for _ in range(3))
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert set(first.json()["error"]) >= {"message", "type", "code", "fbtrace_id"}
    assert second.status_code == 500 and second.json()["error"]["code"] == 1
    assert third.status_code == 200
    assert [s.fault for s in fake.sends()] == ["429", "500", None]


def test_faults_scripted_for_one_message_leave_the_others_alone(fake):
    fake.script_for(5, "503")
    assert meta_post(fake.url, message_id=4).status_code == 200
    assert meta_post(fake.url, message_id=5).status_code == 503
    assert meta_post(fake.url, message_id=5).status_code == 200
    assert fake.counts() == {4: 1, 5: 2} and fake.accepted_counts() == {4: 1, 5: 1}


def test_a_fraction_of_errors_is_injected(fake):
    fake.configure(errors={"500": 0.5})
    statuses = [meta_post(fake.url, message_id=i).status_code for i in range(60)]
    assert 10 < statuses.count(500) < 50
    assert statuses.count(500) + statuses.count(200) == 60


def test_timeout_holds_past_the_client_then_counts_as_accepted(fake):
    fake.configure(hold=0.5)
    fake.script("timeout")
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{fake.url}/v23.0/1/messages",
            json={
                "messaging_product": "whatsapp",
                "to": "91",
                "biz_opaque_callback_data": "dakiya:9",
            },
            headers={"Authorization": "Bearer t"},
            timeout=0.1,
        )
    for _ in range(100):  # the fake answers when the hold ends, after the client left
        if fake.sends():
            break
        threading.Event().wait(0.05)
    assert fake.accepted_counts() == {9: 1}


def test_drop_closes_the_connection_without_an_answer(fake):
    fake.script("drop")
    with pytest.raises(requests.ConnectionError):
        meta_post(fake.url, message_id=8)
    (send,) = fake.sends()
    assert send.fault == "drop" and not send.accepted
    assert fake.accepted_counts() == {}


def test_unknown_faults_are_refused(fake):
    with pytest.raises(ValueError):
        fake.script("418")


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes, str]] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((json.loads(body), body, self.headers["X-Hub-Signature-256"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_accepted_meta_sends_are_followed_by_signed_status_webhooks():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receipts_url = f"http://127.0.0.1:{server.server_port}/webhooks/whatsapp/meta"
    try:
        with FakeProvider(latency=0.0, receipts_url=receipts_url, app_secret="s3cret") as fake:
            wamids = [meta_post(fake.url, message_id=i).json()["messages"][0]["id"] for i in (1, 2)]
            for _ in range(100):
                if fake.receipts_posted >= 3:
                    break
                threading.Event().wait(0.05)
    finally:
        server.shutdown()
    statuses = []
    for payload, body, signature in Receiver.received:
        assert verify_hmac("s3cret", body, signature, prefix="sha256=")
        assert payload["object"] == "whatsapp_business_account"
        change = payload["entry"][0]["changes"][0]
        assert change["field"] == "messages"
        statuses += change["value"]["statuses"]
    seen = {(s["id"], s["status"], s["biz_opaque_callback_data"]) for s in statuses}
    assert seen == {
        (wamid, status, f"dakiya:{i}")
        for i, wamid in zip((1, 2), wamids, strict=True)
        for status in ("sent", "delivered", "read")
    }


def test_as_a_subprocess_it_prints_its_url_and_serves_counts_over_http():
    with provider_process("--latency", "0", "--script", "500") as (remote, _pid):
        assert meta_post(remote.url, message_id=21).status_code == 500
        assert meta_post(remote.url, message_id=21).status_code == 200
        assert remote.counts() == {21: 2}
        assert remote.accepted_counts() == {21: 1}
        assert [s.status for s in remote.sends()] == [500, 200]
        remote.script_for(22, "131049")
        assert meta_post(remote.url, message_id=22).json()["error"]["code"] == 131049
        remote.reset()
        assert remote.counts() == {} and remote.stats()["total"] == 0


def test_a_paced_batch_reaches_the_provider_spread_over_its_time(fake, settings):
    """Issue 19: a batch's sends go out at their times in the pacing schedule, not at
    once, so that no second at the provider carries more than the rate."""
    from bot.delivery.providers.base import Pace

    meta = MetaProvider(settings.replace(meta_api_base_url=fake.url))
    results = meta.start_many([outbound(n) for n in range(20, 40)], Pace(0.1, 0.3))()

    assert all(not isinstance(r, ProviderError) for r in results)
    arrived = sorted(s.arrived for s in fake.sends())
    assert arrived[-1] - arrived[0] >= 0.25  # 20 sends over 0.3 s: the last ~0.285 s later
    first_half = sum(1 for t in arrived if t < arrived[0] + 0.15)
    assert first_half <= 12  # evenly: about half of them in the first half


def test_the_fake_posts_receipts_one_status_per_post_from_many_posters():
    """The combined benchmark's fake: one status per POST, as Meta posts them."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        with FakeProvider(
            latency=0.0, receipts_url=url, app_secret="s", receipt_batch=1, receipt_posters=4
        ) as running:
            for n in range(3):
                assert meta_post(running.url, n).status_code == 200
            deadline = time.time() + 10
            while len(received) < 9 and time.time() < deadline:
                time.sleep(0.05)
    finally:
        server.shutdown()
    statuses = [b["entry"][0]["changes"][0]["value"]["statuses"] for b in received]
    assert len(received) == 9 and all(len(s) == 1 for s in statuses)
    assert (
        sorted(s[0]["status"] for s in statuses) == ["delivered"] * 3 + ["read"] * 3 + ["sent"] * 3
    )
