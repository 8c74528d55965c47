"""Settings an admin changes at run time: policy knobs and the template map.

Policy knobs live in `runtime_setting` and override the environment's values. Template
edits live per order event in `template_override`: an override replaces the map file's
entry for its event until it is deleted, and every other event follows the file (edits
to the file are picked up). Every process re-reads both every few seconds, so a change
reaches all workers without a restart. Each change is validated exactly as start-up
validates the environment.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import tomllib

from bot.core.config import ConfigError, Settings, validate
from bot.core.models import RuntimeSetting, TemplateCategory, TemplateOverride, utcnow
from bot.core.notifications import NotificationMap, parse_notification_map
from bot.core.rate_card import RateCard, RateCardSchema, from_file, parse

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
REFRESH_SECONDS = 5.0
#: The runtime_setting key of an admin's rate card (bot/core/rate_card.py).
RATE_CARD = "rate_card"

log = logging.getLogger(__name__)


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
    """The map file's data; ConfigError when it cannot be read."""
    try:
        with open(settings.notifications_file, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"NOTIFICATIONS_FILE {settings.notifications_file}: {exc}") from exc


def template_overrides() -> dict[str, dict]:
    """{event kind: mapping} of the events an admin remapped."""
    return {row.event_kind: row.mapping for row in TemplateOverride.select()}


def notification_data(settings: Settings) -> dict:
    """The template map as data: the file's, with each overridden event's entry replaced
    by the admin's."""
    data = base_notification_data(settings)
    return {**data, "events": {**(data.get("events") or {}), **template_overrides()}}


def template_sources(settings: Settings) -> tuple[dict, dict[str, str]]:
    """The template map as data, and where each event's entry comes from: "file" or
    "override"."""
    data = notification_data(settings)
    overridden = {row.event_kind for row in TemplateOverride.select(TemplateOverride.event_kind)}
    sources = {kind: "override" if kind in overridden else "file" for kind in data["events"]}
    return data, sources


def check_template(settings: Settings, event: str, mapping: dict) -> None:
    """Raise ConfigError when the map with `mapping` for `event` would not load."""
    data = notification_data(settings)
    data = {**data, "events": {**data["events"], event: mapping}}
    parse_notification_map(data, source="template map")


def save_template_override(event: str, mapping: dict, actor: str) -> dict | None:
    """Map `event` to `mapping` until the override is deleted; the override it replaced."""
    before = TemplateOverride.get_or_none(TemplateOverride.event_kind == event)
    fields = {"mapping": mapping, "updated_by": actor, "updated_at": utcnow()}
    if before is None:
        TemplateOverride.create(event_kind=event, **fields)
        return None
    TemplateOverride.update(**fields).where(TemplateOverride.id == before.id).execute()
    return before.mapping


def delete_template_override(event: str) -> dict | None:
    """Send `event` with the map file's entry again; the deleted override, None if none."""
    row = TemplateOverride.get_or_none(TemplateOverride.event_kind == event)
    if row is None:
        return None
    TemplateOverride.delete().where(TemplateOverride.id == row.id).execute()
    return row.mapping


class Refreshing:
    """A value rebuilt from the database at most every REFRESH_SECONDS per process.

    With `keep_on`, a rebuild raising one of those errors keeps the last good value (and
    logs why): a map file broken while the process runs does not stop every send."""

    def __init__(self, build, keep_on: tuple[type[Exception], ...] = ()) -> None:
        self._build = build
        self._keep_on = keep_on
        self._value = None
        self._at = float("-inf")

    def get(self):
        if time.monotonic() - self._at >= REFRESH_SECONDS:
            try:
                self._value = self._build()
            except self._keep_on as exc:
                if self._value is None:
                    raise
                log.error("keeping the last good value: %s", exc)
            self._at = time.monotonic()
        return self._value

    def expire(self) -> None:
        self._at = float("-inf")


def current_settings(base: Settings) -> Settings:
    changes = overrides()
    return apply_overrides(base, changes) if changes else base


def current_notifications(settings: Settings) -> NotificationMap:
    """The map file with the admin's overrides, and the categories Meta has given its
    templates since (`TemplateCategory`)."""
    notifications = parse_notification_map(notification_data(settings), source="template map")
    return dataclasses.replace(notifications, meta_categories=meta_categories())


def meta_category_rows() -> dict[str, list[TemplateCategory]]:
    """{template: its TemplateCategory rows, by language}."""
    rows: dict[str, list[TemplateCategory]] = {}
    for row in TemplateCategory.select().order_by(TemplateCategory.language):
        rows.setdefault(row.template, []).append(row)
    return rows


def meta_categories() -> dict[tuple[str, str], str]:
    return {
        (row.template, row.language): row.category
        for row in TemplateCategory.select(
            TemplateCategory.template, TemplateCategory.language, TemplateCategory.category
        )
    }


def rate_card(path: str) -> RateCard:
    """The rate card in force: an admin's, else the file's at `path`."""
    saved = RuntimeSetting.get_or_none(RuntimeSetting.key == RATE_CARD)
    if saved is None:
        return from_file(path)
    return parse(
        saved.value, origin="admin", updated_by=saved.updated_by, updated_at=saved.updated_at
    )


def save_rate_card(card: RateCard, actor: str) -> dict | None:
    """Store an admin's card; the one it replaces, as JSON (None: the file's was in force)."""
    before = RuntimeSetting.get_or_none(RuntimeSetting.key == RATE_CARD)
    value = RateCardSchema().dump(card)
    stored = {"value": value, "updated_by": actor, "updated_at": utcnow()}
    if before is None:
        RuntimeSetting.create(key=RATE_CARD, **stored)
        return None
    RuntimeSetting.update(**stored).where(RuntimeSetting.key == RATE_CARD).execute()
    return before.value


def delete_rate_card() -> dict | None:
    """Remove an admin's card (the file's is in force again); the card removed, if any."""
    before = RuntimeSetting.get_or_none(RuntimeSetting.key == RATE_CARD)
    if before is not None:
        RuntimeSetting.delete().where(RuntimeSetting.key == RATE_CARD).execute()
    return before.value if before else None
