"""Login throttling: failed logins are counted per client address and per user name,
each attempt before its password is checked, and a success clears only its own user's
failures; so neither parallel guesses nor a viewer's own logins let anyone guess more."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from werkzeug.security import generate_password_hash

import bot.web.auth
from tests.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD, basic_auth

PATH = "/admin/api/customers"
WRONG = basic_auth("admin", "guess")
ADMIN_LOGIN = basic_auth("admin", ADMIN_PASSWORD)
VIEWER_LOGIN = basic_auth("viewer", VIEWER_PASSWORD)


def get(client, headers, address="203.0.113.7"):
    return client.get(PATH, headers=headers, environ_base={"REMOTE_ADDR": address})


@pytest.fixture
def checked_passwords(monkeypatch):
    """Every password check the server makes, as the user name's hash it was checked
    against (counts the real werkzeug checks; changes nothing about them)."""
    checks = []
    real = bot.web.auth.check_password_hash
    lock = threading.Lock()

    def counting(password_hash: str, password: str) -> bool:
        with lock:
            checks.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(bot.web.auth, "check_password_hash", counting)
    return checks


def test_a_viewers_success_does_not_reset_the_addresss_failed_admin_guesses(client):
    assert [get(client, WRONG).status_code for _ in range(4)] == [401] * 4
    assert get(client, VIEWER_LOGIN).status_code == 200  # the same address logs in
    assert get(client, WRONG).status_code == 401  # the fifth failure from this address
    locked = get(client, ADMIN_LOGIN)  # even the right admin password is not checked now
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert locked.get_json()["error"]["code"] == "locked_out"


def test_a_viewer_logging_in_again_and_again_never_unlocks_guessing(client, checked_passwords):
    guesses = 0
    for _ in range(20):  # interleave: guess, log in as the viewer, guess...
        if get(client, WRONG).status_code == 401:
            guesses += 1
        get(client, VIEWER_LOGIN)
    assert guesses == 5  # LOGIN_MAX_FAILURES, not one per viewer login


def test_forty_parallel_guesses_check_at_most_the_limit(make_app, settings, checked_passwords):
    # A real (slow) hash, so that the guesses truly overlap while they are checked.
    strong = generate_password_hash("the real one")
    client = make_app(settings.replace(admin_users=f"root:admin:{strong}")).test_client()
    start = threading.Barrier(40)

    def guess(i: int) -> int:
        start.wait()
        return get(client, basic_auth("root", f"guess {i}")).status_code

    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(guess, range(40)))
    assert len(checked_passwords) <= settings.login_max_failures
    assert codes.count(401) == len(checked_passwords) and codes.count(429) == 40 - len(
        checked_passwords
    )


def test_a_user_name_is_locked_across_addresses(client):
    for i in range(5):  # one guess each from five addresses
        assert get(client, WRONG, address=f"198.51.100.{i}").status_code == 401
    locked = get(client, ADMIN_LOGIN, address="192.0.2.1")  # a sixth, fresh address
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    # Only that name is locked: another user from a fresh address logs in.
    assert get(client, VIEWER_LOGIN, address="192.0.2.2").status_code == 200


def test_a_success_clears_that_users_failures_only(client):
    for i in range(4):
        assert get(client, WRONG, address=f"198.51.100.{i}").status_code == 401
    assert get(client, ADMIN_LOGIN, address="192.0.2.1").status_code == 200
    # The admin's own failures are forgotten: four more guesses from new addresses are
    # checked (wrong: 401), none refused unchecked.
    codes = [get(client, WRONG, address=f"198.51.100.{10 + j}").status_code for j in range(4)]
    assert codes == [401] * 4


def test_a_login_verified_a_moment_ago_is_not_hashed_again(client, checked_passwords):
    assert [get(client, ADMIN_LOGIN).status_code for _ in range(3)] == [200] * 3
    assert len(checked_passwords) == 1
    assert get(client, basic_auth("admin", "not it")).status_code == 401  # still checked
    assert len(checked_passwords) == 2
