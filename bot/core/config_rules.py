"""What the settings mean: the admin users, the send-time policy's rules and the alert
thresholds, parsed from `Settings` into the values their modules use.

Pure, and here beside `bot.core.config` rather than in `auth`, `policy` and `alerts`, so that
`config.validate` checks every setting at start-up (and on every run-time change)
without importing anything above the core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from enum import StrEnum

from bot.core import phones
from bot.core.models import Category

# --- Admin users (ADMIN_USERS) --------------------------------------------------------

#: The weakest stored hashes accepted: werkzeug's scrypt default (N=2^15, r=8, p=1, what
#: `flask --app wsgi hash-password` makes) and PBKDF2 at OWASP's 2023 iteration counts.
MIN_SCRYPT = (2**15, 8, 1)
MIN_PBKDF2_ITERATIONS = {"sha256": 600_000, "sha512": 210_000}


class Role(StrEnum):
    ADMIN = "admin"  # everything, including exports of personal data
    VIEWER = "viewer"  # read only, and no bulk or per-customer exports


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


def weak_hash_problems(value: str) -> list[str]:
    """What is wrong with each ADMIN_USERS hash too weak to keep (or not a hash at all),
    naming the user; empty when every hash is strong enough."""
    problems = []
    for name, (_role, password_hash) in parse_admin_users(value).items():
        reason = hash_weakness(password_hash)
        if reason:
            problems.append(
                f"ADMIN_USERS entry for {name!r}: {reason}; make a new hash with "
                "`flask --app wsgi hash-password`"
            )
    return problems


def hash_weakness(password_hash: str) -> str | None:
    """Why werkzeug hash `password_hash` is too weak, or None when it is strong enough."""
    method, *rest = password_hash.split("$")
    kind, *params = method.split(":")
    if len(rest) != 2 or kind not in ("scrypt", "pbkdf2"):
        return "not a werkzeug scrypt or pbkdf2 hash (plain text is never accepted)"
    if kind == "scrypt":
        if not params:
            return None  # werkzeug's default cost
        if len(params) != 3 or not all(p.isdigit() for p in params):
            return f"{method} is not a werkzeug scrypt hash"
        if any(int(p) < least for p, least in zip(params, MIN_SCRYPT, strict=True)):
            return f"{method} is weaker than scrypt:{':'.join(map(str, MIN_SCRYPT))}"
        return None
    algorithm = params[0] if params else "sha256"
    if algorithm not in MIN_PBKDF2_ITERATIONS or len(params) > 2:
        return f"{method} is not accepted (use scrypt, or pbkdf2 with sha256 or sha512)"
    least = MIN_PBKDF2_ITERATIONS[algorithm]
    if len(params) == 2 and not (params[1].isdigit() and int(params[1]) >= least):
        return f"{method} has too few iterations (at least {least:,})"
    return None  # given, or werkzeug's default count, which is above the minimum


# --- The send-time policy's rules (bot.policy.policy) -----------------------------------------

#: The messaging tiers (MESSAGING_TIER): unique customers per rolling 24 h.
TIERS = {"250": 250, "2000": 2000, "10000": 10000, "100000": 100000, "unlimited": None}
_CLOCK_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily quiet period in local time, e.g. 21:00-09:00 (it may cross midnight)."""

    start: time
    end: time

    def is_quiet(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class Caps:
    daily: int = 0  # 0: no cap
    weekly: int = 0


@dataclass(frozen=True, slots=True)
class Rules:
    """The shop's policy settings, parsed once."""

    quiet_hours: dict[Category, QuietHours] = field(default_factory=dict)
    caps: dict[Category, Caps] = field(default_factory=dict)
    min_gap: timedelta = timedelta(0)
    tier_limit: int | None = None
    duplicate_window: timedelta = timedelta(0)
    #: A marketing message not handed over within this long of being created is never
    #: sent (reason `expired`); None: no limit.
    marketing_ttl: timedelta | None = None


#: MARKETING_TTL_SECONDS: 0 (no limit), or from a minute to Meta's 30 days (§9.3).
MARKETING_TTL_RANGE = (60, 30 * 86400)


def parse_quiet_hours(value: str, name: str) -> QuietHours | None:
    value = value.strip().replace(" ", "")
    if not value or value.lower() in ("off", "none"):
        return None
    match = _CLOCK_RANGE.match(value)
    if not match or match.group(1, 2) == match.group(3, 4):
        raise ValueError(f"{name} must look like 21:00-09:00 (got {value!r})")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return QuietHours(time(h1, m1), time(h2, m2))


def rules_from_settings(settings) -> Rules:
    """The policy's rules from settings; ValueError names the variable at fault."""
    quiet = {
        Category.MARKETING: parse_quiet_hours(
            settings.quiet_hours_marketing, "QUIET_HOURS_MARKETING"
        ),
        Category.UTILITY: parse_quiet_hours(settings.quiet_hours_utility, "QUIET_HOURS_UTILITY"),
    }
    if settings.messaging_tier not in TIERS:
        raise ValueError(f"MESSAGING_TIER must be one of {', '.join(TIERS)}")
    for name in (
        "marketing_daily_cap",
        "marketing_weekly_cap",
        "utility_daily_cap",
        "utility_weekly_cap",
        "min_gap_seconds",
        "duplicate_window_seconds",
    ):
        if getattr(settings, name) < 0:
            raise ValueError(f"{name.upper()} must not be negative")
    ttl = settings.marketing_ttl_seconds
    low, high = MARKETING_TTL_RANGE
    if ttl and not low <= ttl <= high:
        raise ValueError(f"MARKETING_TTL_SECONDS must be 0 (no limit) or {low} to {high}")
    return Rules(
        quiet_hours={k: v for k, v in quiet.items() if v is not None},
        caps={
            Category.MARKETING: Caps(settings.marketing_daily_cap, settings.marketing_weekly_cap),
            Category.UTILITY: Caps(settings.utility_daily_cap, settings.utility_weekly_cap),
        },
        min_gap=timedelta(seconds=settings.min_gap_seconds),
        tier_limit=TIERS[settings.messaging_tier],
        duplicate_window=timedelta(seconds=settings.duplicate_window_seconds),
        marketing_ttl=timedelta(seconds=ttl) if ttl else None,
    )


# --- Alert thresholds (bot.observability.alerts) -------------------------------------


@dataclass(frozen=True)
class AlertRules:
    """The thresholds of every rule; a threshold of 0 turns its rule off."""

    window: timedelta = timedelta(minutes=15)
    failure_rate: float = 0.2
    min_volume: int = 20
    dead_letters: int = 1
    queue_age_seconds: int = 300
    no_send: timedelta = timedelta(minutes=15)
    signature_failures: int = 20
    provider_event_ttl: timedelta = timedelta(hours=24)
    unhandled_updates: int = 20  # within an hour (bot.delivery.unhandled.ALERT_WINDOW)
    cooldown: timedelta = timedelta(minutes=60)
    #: The Graph API version in use when the provider is Meta (its retirement is checked).
    meta_api_version: str | None = None


def alert_rules_from_settings(settings) -> AlertRules:
    """The rules for `settings`; ValueError names every ALERT_* / SMTP_URL setting at fault."""
    s = settings
    problems = []
    counts = (
        "alert_window_minutes",
        "alert_min_volume",
        "alert_dead_letters",
        "alert_queue_age_seconds",
        "alert_no_send_minutes",
        "alert_signature_failures",
        "alert_provider_event_hours",
        "alert_unhandled_updates",
    )
    problems += [f"{name.upper()} must be 0 or more" for name in counts if getattr(s, name) < 0]
    if s.alert_window_minutes < 1:
        problems.append("ALERT_WINDOW_MINUTES must be at least 1")
    if s.alert_cooldown_minutes < 1:
        problems.append("ALERT_COOLDOWN_MINUTES must be at least 1")
    if not 0 <= s.alert_failure_rate <= 1:
        problems.append("ALERT_FAILURE_RATE must be between 0 and 1 (0: off)")
    if s.alert_slack_webhook_url and not s.alert_slack_webhook_url.startswith(
        ("https://", "http://")
    ):
        problems.append("ALERT_SLACK_WEBHOOK_URL must start with https://")
    if s.smtp_url and not s.smtp_url.startswith(("smtp://", "smtps://")):
        problems.append("SMTP_URL must start with smtp:// or smtps://")
    if s.smtp_url and not s.alert_email_to:
        problems.append("ALERT_EMAIL_TO is required with SMTP_URL")
    if s.alert_whatsapp_numbers and not s.alert_whatsapp_template:
        problems.append("ALERT_WHATSAPP_TEMPLATE is required with ALERT_WHATSAPP_NUMBERS")
    bad = [n for n in s.alert_whatsapp_numbers if not phones.to_e164(n, s.default_region)]
    if bad:
        problems.append(f"ALERT_WHATSAPP_NUMBERS has unusable numbers: {', '.join(bad)}")
    if problems:
        raise ValueError("; ".join(problems))
    return AlertRules(
        window=timedelta(minutes=s.alert_window_minutes),
        failure_rate=s.alert_failure_rate,
        min_volume=s.alert_min_volume,
        dead_letters=s.alert_dead_letters,
        queue_age_seconds=s.alert_queue_age_seconds,
        no_send=timedelta(minutes=s.alert_no_send_minutes),
        signature_failures=s.alert_signature_failures,
        provider_event_ttl=timedelta(hours=s.alert_provider_event_hours),
        unhandled_updates=s.alert_unhandled_updates,
        cooldown=timedelta(minutes=s.alert_cooldown_minutes),
        meta_api_version=s.meta_api_version if s.whatsapp_provider == "meta" else None,
    )
