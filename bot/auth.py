"""Who may use the admin API: users with hashed passwords and a role, failed-login
lock-out, and the rule that state-changing requests cannot come from a cross-site form.

Users come from the database (managed with `flask --app wsgi users ...`) and from the
ADMIN_USERS setting ("name:role:hash,..."), which carries password hashes only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

import redis
from flask import request
from flask_httpauth import HTTPBasicAuth
from werkzeug.security import check_password_hash, generate_password_hash

from bot.errors import ApiError, error_response
from bot.extensions import services
from bot.models import AdminUser

auth = HTTPBasicAuth(realm="Dakiya admin")
FAILURES = "dakiya:login:failures:{ip}"
LOCKED = "dakiya:login:locked:{ip}"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Checked when the user does not exist, so that a wrong user name costs as much time
# as a wrong password and names cannot be probed.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


class Role(StrEnum):
    ADMIN = "admin"  # everything
    VIEWER = "viewer"  # read only


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


def parse_admin_users(value: str) -> dict[str, tuple[Role, str]]:
    """ADMIN_USERS: "name:role:hash,..." -> {name: (role, hash)}; ValueError names the
    entry at fault. Hashes are werkzeug's (`flask --app wsgi hash-password`)."""
    users = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, _, rest = entry.partition(":")
        role, _, password_hash = rest.partition(":")
        if not name or role not in Role.__members__.values() or "$" not in password_hash:
            raise ValueError(
                f"ADMIN_USERS entry for {name or '?'!r} must be name:admin|viewer:<password hash>"
            )
        users[name] = (Role(role), password_hash)
    return users


def find_user(name: str) -> tuple[Role, str] | None:
    configured = parse_admin_users(services().settings.admin_users)
    if name in configured:
        return configured[name]
    row = AdminUser.get_or_none((AdminUser.username == name) & (AdminUser.disabled == False))  # noqa: E712
    return (Role(row.role), row.password_hash) if row else None


def client_ip() -> str:
    return request.remote_addr or "unknown"


@auth.verify_password
def verify_password(username: str, password: str) -> User | None:
    """Check a login; throttle an address that keeps failing (429 with Retry-After)."""
    if not username and not password:
        return None
    throttle = LoginThrottle(services().redis, client_ip(), services().settings)
    locked_for = throttle.locked_for()
    if locked_for:
        raise ApiError(
            429,
            "locked_out",
            "too many failed logins; try again later",
            headers={"Retry-After": str(locked_for)},
        )
    found = find_user(username)
    password_hash = found[1] if found else _DUMMY_HASH
    if check_password_hash(password_hash, password) and found:
        throttle.succeeded()
        return User(username, found[0])
    throttle.failed()
    return None


class LoginThrottle:
    """Failed logins per client address, in Redis; best effort if Redis is away."""

    def __init__(self, conn: redis.Redis, ip: str, settings) -> None:
        self.conn, self.settings = conn, settings
        self.failures, self.locked = FAILURES.format(ip=ip), LOCKED.format(ip=ip)

    def locked_for(self) -> int:
        try:
            return _ttl(self.conn, self.locked)
        except redis.RedisError:
            return 0

    def succeeded(self) -> None:
        try:
            self.conn.delete(self.failures)
        except redis.RedisError:
            pass

    def failed(self) -> None:
        window = self.settings.login_lockout_seconds
        try:
            failures = self.conn.incr(self.failures)
            self.conn.expire(self.failures, window)
            if failures >= self.settings.login_max_failures:
                self.conn.set(self.locked, 1, ex=window)
                self.conn.delete(self.failures)
        except redis.RedisError:
            pass


def _ttl(conn: redis.Redis, key: str) -> int:
    ttl = conn.ttl(key)
    return ttl if ttl and ttl > 0 else 0


@auth.error_handler
def unauthorized(status: int):
    return error_response(status, "unauthorized", "valid admin credentials are required")


def check_request_rules() -> None:
    """Rules for every admin request, after login: viewers only read, and a request
    that changes something must carry JSON or an X-Requested-With header.

    Browsers resend basic-auth credentials on their own, so a cross-site form could
    otherwise post here; a form can send neither that content type nor that header
    without a CORS preflight, which this server never grants.
    """
    if request.method in SAFE_METHODS:
        return
    user: User = auth.current_user()
    if user.role != Role.ADMIN:
        raise ApiError(403, "forbidden", f"the {user.role} role can only read")
    if request.mimetype != "application/json" and not request.headers.get("X-Requested-With"):
        raise ApiError(
            403,
            "cross_site_request",
            "send a JSON body (Content-Type: application/json) or an X-Requested-With header",
        )


def actor() -> str:
    """The logged-in user's name, for the audit log."""
    user = auth.current_user()
    return user.name if user else "system"
