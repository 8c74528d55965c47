"""Who may use the admin API: users with hashed passwords and a role, failed-login
throttling per address and per user name, and the rule that state-changing requests
cannot come from a cross-site form.

Users come from the database (managed with `flask --app wsgi users ...`) and from the
ADMIN_USERS setting ("name:role:hash,..."), which carries password hashes only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

import click
import redis
from flask import Flask, current_app, request
from flask_httpauth import HTTPBasicAuth
from werkzeug.security import check_password_hash, generate_password_hash

from bot.core.config_rules import Role, parse_admin_users
from bot.core.errors import ApiError
from bot.core.models import AdminUser, db, utcnow
from bot.extensions import services
from bot.web.errors import error_response

auth = HTTPBasicAuth(realm="Dakiya admin")
ADDRESS_FAILURES = "dakiya:login:address:{ip}"
USER_FAILURES = "dakiya:login:user:{name}"  # the name's SHA-256: any length, any bytes
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: How long a login this process verified is recognised without hashing it again.
VERIFIED_SECONDS = 300
VERIFIED_MAX = 1024
# Checked when the user does not exist, so that a wrong user name costs as much time
# as a wrong password and names cannot be probed.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


#: Roles that may take personal data out of Dakiya in bulk or per customer.
EXPORT_ROLES = frozenset({Role.ADMIN})


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role


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
    """Check a login, throttled per address and per user name (429 with Retry-After).

    Basic auth sends the password with every request, so a login this process verified
    a moment ago is recognised without hashing again and without touching the throttle.
    Any other attempt takes a slot in both counters before its password is checked: at
    most LOGIN_MAX_FAILURES passwords are ever checked per address and per name in a
    window, however many guesses arrive at once.
    """
    if not username and not password:
        return None
    found = find_user(username)
    verified = _verified_logins()
    if found and verified.known(username, found[1], password):
        return User(username, found[0])
    settings = services().settings
    throttle = LoginThrottle(services().redis, client_ip(), username, settings)
    locked_for = throttle.reserve()
    if locked_for:
        raise ApiError(
            429,
            "locked_out",
            "too many failed logins; try again later",
            headers={"Retry-After": str(locked_for)},
        )
    password_hash = found[1] if found else _DUMMY_HASH
    if check_password_hash(password_hash, password) and found:
        throttle.succeeded()
        verified.remember(username, found[1], password)
        return User(username, found[0])
    return None  # the slot taken stays counted as this failure


def _verified_logins() -> VerifiedLogins:
    return current_app.extensions.setdefault("dakiya.verified_logins", VerifiedLogins())


class VerifiedLogins:
    """Credentials this process checked successfully in the last VERIFIED_SECONDS.

    Held as a keyed digest of name, stored hash and password (the key never leaves the
    process), so nothing here can be turned back into a password, and changing or
    disabling a user (a new hash, or no user) makes their entry useless at once.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._until: dict[bytes, float] = {}

    def _digest(self, name: str, password_hash: str, password: str) -> bytes:
        message = "\0".join((name, password_hash, password)).encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, message, "sha256")

    def known(self, name: str, password_hash: str, password: str) -> bool:
        until = self._until.get(self._digest(name, password_hash, password))
        return until is not None and until > time.monotonic()

    def remember(self, name: str, password_hash: str, password: str) -> None:
        if len(self._until) >= VERIFIED_MAX:
            self._until.clear()  # a handful of admins: only churn ever gets here
        self._until[self._digest(name, password_hash, password)] = (
            time.monotonic() + VERIFIED_SECONDS
        )


class LoginThrottle:
    """Failed logins per client address and per user name, counted in Redis.

    Each attempt is counted in both counters, in one Redis transaction, before its
    password is checked (a window starts with its first attempt); over LOGIN_MAX_FAILURES in
    either counter, the attempt is refused unchecked until the window ends. A success
    gives back its own slot on the address and clears the name's failures, so another
    user's success (a viewer's) never unlocks guesses at an admin from the same address.
    Best effort if Redis is away: logins are still checked, just not throttled.
    """

    def __init__(self, conn: redis.Redis, ip: str, username: str, settings) -> None:
        self.conn, self.settings = conn, settings
        name = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()
        self.address, self.user = ADDRESS_FAILURES.format(ip=ip), USER_FAILURES.format(name=name)

    def reserve(self) -> int:
        """Count this attempt; 0 when it may be checked, else seconds until it may."""
        window = self.settings.login_lockout_seconds
        try:
            pipe = self.conn.pipeline(transaction=True)
            for key in (self.address, self.user):
                pipe.set(key, 0, ex=window, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
            results = pipe.execute()
        except redis.RedisError:
            return 0
        limit = self.settings.login_max_failures
        # Per key: SET's answer, the count, its TTL (the end of its window).
        counted = [results[i : i + 3] for i in range(0, len(results), 3)]
        waits = [max(ttl, 1) for _, count, ttl in counted if count > limit]
        return max(waits, default=0)

    def succeeded(self) -> None:
        try:
            _give_back(self.conn, keys=[self.address])
            self.conn.delete(self.user)
        except redis.RedisError:
            pass


_GIVE_BACK = """
if redis.call('exists', KEYS[1]) == 1 and tonumber(redis.call('get', KEYS[1])) > 0 then
  return redis.call('decr', KEYS[1])
end
return 0
"""


def _give_back(conn: redis.Redis, keys: list[str]) -> None:
    """Undo one count, unless its window has ended meanwhile (no key without expiry)."""
    conn.eval(_GIVE_BACK, 1, *keys)


@auth.error_handler
def unauthorized(status: int):
    return error_response(status, "unauthorized", "valid admin credentials are required")


def may_export(view: Callable) -> Callable:
    """A view that hands out customers' personal data (exports): admins only.

    Such answers are plain GETs, which the read-only viewer role may otherwise make.
    """

    @wraps(view)
    def checked(*args, **kwargs):
        user: User = auth.current_user()
        if user.role not in EXPORT_ROLES:
            raise ApiError(403, "forbidden", f"the {user.role} role may not export personal data")
        return view(*args, **kwargs)

    return checked


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


# --- managing users: `flask --app wsgi users ...` and `hash-password` ---------------


def init_app(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(hash_password_command)


@click.command("hash-password")
@click.password_option()
def hash_password_command(password: str) -> None:
    """Print a password hash for an ADMIN_USERS entry (name:role:<hash>)."""
    click.echo(generate_password_hash(password))


users = click.Group("users", help="Admin API users (passwords are stored hashed).")


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "viewer"]), default="viewer", show_default=True)
@click.password_option()
def create_user_command(username: str, role: str, password: str) -> None:
    """Create a user, or set an existing user's role and password (rotation)."""
    with db.connection_context():
        fields = {
            "password_hash": generate_password_hash(password),
            "role": role,
            "disabled": False,
        }
        user, created = AdminUser.get_or_create(username=username, defaults=fields)
        if not created:
            AdminUser.update(updated_at=utcnow(), **fields).where(AdminUser.id == user.id).execute()
    click.echo(f"{'created' if created else 'updated'} {username} ({role})")


@users.command("disable")
@click.argument("username")
def disable_user_command(username: str) -> None:
    """Stop a user from logging in."""
    with db.connection_context():
        done = (
            AdminUser.update(disabled=True, updated_at=utcnow())
            .where(AdminUser.username == username)
            .execute()
        )
    click.echo("disabled" if done else f"no user {username}")


@users.command("list")
def list_users_command() -> None:
    """List every user who may log in, or could: name, role, state and source.

    The source is ADMIN_USERS (the environment) or database (`users create`). A database
    user whose name ADMIN_USERS also has is listed as "shadowed": the environment's entry
    is the one that logs in (see find_user).
    """
    configured = parse_admin_users(services().settings.admin_users)
    lines = [(name, role.value, "active", "ADMIN_USERS") for name, (role, _) in configured.items()]
    with db.connection_context():
        for user in AdminUser.select():
            state = "disabled" if user.disabled else "active"
            if user.username in configured:
                state = "shadowed"
            lines.append((user.username, user.role, state, "database"))
    for line in sorted(lines):
        click.echo("\t".join(line))
