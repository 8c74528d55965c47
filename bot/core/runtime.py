"""Settings an admin changes at run time: policy knobs and the template map.

They live in the database (`runtime_setting`) and override the environment's values;
every process re-reads them every few seconds, so a change reaches all workers without
a restart. Each change is validated exactly as start-up validates the environment.
"""

from __future__ import annotations

import dataclasses
import time
import tomllib

from bot.core.config import Settings, validate
from bot.core.models import RuntimeSetting, utcnow
from bot.core.notifications import NotificationMap, parse_notification_map

#: The settings an admin may change at run time (the rest need a deploy).
OVERRIDABLE = (
    "quiet_hours_marketing",
    "quiet_hours_utility",
    "marketing_daily_cap",
    "marketing_weekly_cap",
    "utility_daily_cap",
    "utility_weekly_cap",
    "min_gap_seconds",
    "messaging_tier",
    "duplicate_window_seconds",
    "send_rate_per_second",
)
NOTIFICATIONS = "notifications"
REFRESH_SECONDS = 5.0


def overrides() -> dict:
    rows = RuntimeSetting.select().where(RuntimeSetting.key.in_(OVERRIDABLE))
    return {row.key: row.value for row in rows}


def apply_overrides(base: Settings, changes: dict) -> Settings:
    """`base` with `changes`, validated; ConfigError names what is wrong."""
    return validate(dataclasses.replace(base, **changes))


def settings_after(base: Settings, changes: dict) -> Settings:
    """The settings in force once `changes` are saved over the stored overrides (None
    clears one: the environment's value, `base`, is in force again), validated;
    ConfigError names what is wrong."""
    merged = {**overrides(), **changes}
    return apply_overrides(base, {key: value for key, value in merged.items() if value is not None})


def save_overrides(changes: dict, actor: str) -> None:
    """Store each of `changes`; a None value deletes the override, so the environment's
    value is in force again."""
    for key, value in changes.items():
        if value is None:
            RuntimeSetting.delete().where(RuntimeSetting.key == key).execute()
            continue
        fields = {"value": value, "updated_by": actor, "updated_at": utcnow()}
        updated = RuntimeSetting.update(**fields).where(RuntimeSetting.key == key).execute()
        if not updated:
            RuntimeSetting.create(key=key, **fields)


def base_notification_data(settings: Settings) -> dict:
    with open(settings.notifications_file, "rb") as fh:
        return tomllib.load(fh)


def notification_data(settings: Settings) -> dict:
    """The template map as data: the admin's edited copy, else the file's."""
    row = RuntimeSetting.get_or_none(RuntimeSetting.key == NOTIFICATIONS)
    return row.value if row else base_notification_data(settings)


class Refreshing:
    """A value rebuilt from the database at most every REFRESH_SECONDS per process."""

    def __init__(self, build) -> None:
        self._build = build
        self._value = None
        self._at = float("-inf")

    def get(self):
        if time.monotonic() - self._at >= REFRESH_SECONDS:
            self._value = self._build()
            self._at = time.monotonic()
        return self._value

    def expire(self) -> None:
        self._at = float("-inf")


def current_settings(base: Settings) -> Settings:
    changes = overrides()
    return apply_overrides(base, changes) if changes else base


def current_notifications(settings: Settings) -> NotificationMap:
    return parse_notification_map(notification_data(settings), source="template map")
