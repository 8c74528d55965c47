"""Health probes for the PaaS router."""

from __future__ import annotations


def test_liveness_answers_without_touching_anything(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_ready_when_database_and_redis_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_not_ready_during_a_database_outage(client, database_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"


def test_not_ready_without_redis(make_app, settings):
    from tests.conftest import free_port

    client = make_app(
        settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    ).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == "unavailable"
