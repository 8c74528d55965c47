"""`GET /admin/api/unhandled-updates`: what WhatsApp sent that Dakiya did not act on,
kept raw, paged and filtered like the other admin lists."""

from __future__ import annotations

import json

from tests.conftest import SECRETS, VIEWER, load_payload


def post_meta(client, sign, body) -> None:
    raw = json.dumps(body).encode()
    headers = {"X-Hub-Signature-256": "sha256=" + sign(SECRETS["meta_app_secret"], raw)}
    assert client.post("/webhooks/whatsapp/meta", data=raw, headers=headers).status_code == 200


def unknown_field(n: int) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "user_id_update", "value": {"n": n}}]}],
    }


def test_unhandled_updates_are_listed_raw_with_their_reason(client, sign, run_jobs):
    body = load_payload("meta/other")["user_preferences"]
    pref = body["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    pref["value"] = "signup"
    post_meta(client, sign, body)
    run_jobs()

    response = client.get("/admin/api/unhandled-updates", headers=VIEWER)

    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert {k: item[k] for k in ("provider", "kind", "reason", "location", "phone")} == {
        "provider": "meta",
        "kind": "user_preference",
        "reason": "unknown_value",
        "location": "entry[0].changes[0].value.user_preferences[0]",
        "phone": "+919812345678",
    }
    assert item["payload"] == pref
    assert "signup" in item["detail"] and item["received_at"].endswith("+00:00")


def test_unhandled_updates_are_paged_and_filtered(client, sign, run_jobs):
    for n in range(3):
        post_meta(client, sign, unknown_field(n))
        run_jobs()
    post_meta(client, sign, [])  # JSON, but no webhook: not_whatsapp
    run_jobs()

    first = client.get("/admin/api/unhandled-updates?limit=2", headers=VIEWER).get_json()
    rest = client.get(
        f"/admin/api/unhandled-updates?limit=2&after={first['next_after']}", headers=VIEWER
    ).get_json()
    only = client.get(
        "/admin/api/unhandled-updates?reason=not_whatsapp&provider=meta", headers=VIEWER
    ).get_json()

    assert [i["payload"]["value"]["n"] for i in first["items"]] == [0, 1]
    assert [i["reason"] for i in rest["items"]] == ["unknown_field", "not_whatsapp"]
    assert rest["next_after"] is None
    assert [i["payload"] for i in only["items"]] == [[]]


def test_an_unknown_reason_filter_is_400_naming_it(client):
    response = client.get("/admin/api/unhandled-updates?reason=whatever", headers=VIEWER)
    assert response.status_code == 400
    assert "reason" in response.get_json()["error"]["fields"]
