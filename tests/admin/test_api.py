"""The admin API: basic auth with a hashed password, messages with their reason codes,
dead-letter retry and the conversations handed to a person."""

from __future__ import annotations

import pytest

from bot.core.models import Message, Reason, State
from tests.conftest import ADMIN, ADMIN_PASSWORD, basic_auth
from tests.factories import queued_message


@pytest.fixture
def admin(client):
    return client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_auth("admin", "wrong"),
        basic_auth("root", ADMIN_PASSWORD),
        {"Authorization": "Bearer x"},
    ],
)
def test_admin_api_needs_the_admins_credentials(admin, headers):
    response = admin.get("/admin/api/conversations", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert "WWW-Authenticate" in response.headers


def test_admin_api_is_shut_when_no_user_is_configured(make_app, settings):
    client = make_app(settings.replace(admin_users="")).test_client()
    assert client.get("/admin/api/conversations", headers=ADMIN).status_code == 401


def test_message_shows_state_reason_and_provider_error(admin):
    message = queued_message()
    Message.update(
        state=State.FAILED,
        reason=Reason.PROVIDER_REJECTED,
        error_code="131026",
        error_text="Message undeliverable",
    ).execute()
    body = admin.get(f"/admin/api/messages/{message.id}", headers=ADMIN).get_json()
    assert (body["state"], body["reason"], body["error_code"]) == (
        "failed",
        "provider_rejected",
        "131026",
    )


def test_unknown_message_is_404(admin):
    assert admin.get("/admin/api/messages/999", headers=ADMIN).status_code == 404


def test_retry_requeues_a_dead_letter_and_refuses_anything_else(admin, run_jobs):
    message = queued_message()
    assert admin.post(f"/admin/api/messages/{message.id}/retry", headers=ADMIN).status_code == 409
    Message.update(state=State.FAILED, reason=Reason.RETRIES_EXHAUSTED, attempts=6).execute()
    response = admin.post(f"/admin/api/messages/{message.id}/retry", headers=ADMIN)
    assert response.status_code == 202 and response.get_json()["state"] == "queued"
    run_jobs()
    assert Message.get_by_id(message.id).state == State.READ


def test_bad_flagged_parameter_is_400_naming_it(admin):
    response = admin.get("/admin/api/conversations?flagged=maybe", headers=ADMIN)
    assert response.status_code == 400
    assert "flagged" in response.get_json()["error"]["fields"]


def test_releasing_an_unknown_conversation_is_404(admin):
    assert admin.post("/admin/api/conversations/42/release", headers=ADMIN).status_code == 404
