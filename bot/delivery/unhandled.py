"""Unhandled updates: the parts of signed WhatsApp webhooks Dakiya could not read or does
not act on. Each is stored raw with its reason, in the same transaction as the rest of
its delivery, so that the delivery is answered 200 and nothing a provider sent is lost.

They are listed in the admin API (`GET /admin/api/unhandled-updates`), counted in
`/metrics` (`dakiya_unhandled_updates`) and alerted on (`unhandled_updates:<provider>`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from peewee import SQL, fn

from bot.core.models import UnhandledUpdate
from bot.delivery.providers.base import UnhandledItem

log = logging.getLogger(__name__)

#: The alert rule counts unhandled updates received within this window.
ALERT_WINDOW = timedelta(hours=1)


def dedupe_key(item: UnhandledItem) -> str:
    """The same item redelivered (Meta retries for days) is stored once."""
    canonical = json.dumps(
        [item.provider, item.kind, item.where, item.raw], sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(items: Iterable[UnhandledItem], now: datetime) -> int:
    """Store each item not stored before; how many were new. Runs inside the caller's
    transaction (one INSERT ... ON CONFLICT DO NOTHING)."""
    rows = {}
    for item in items:
        key = dedupe_key(item)
        rows.setdefault(
            key,
            {
                "provider": item.provider,
                "kind": item.kind,
                "reason": str(item.reason),
                "detail": item.detail,
                "location": item.where[:255],
                "phone": item.phone,
                "payload": item.raw,
                "dedupe_key": key,
                "received_at": now,
            },
        )
        log.warning("unhandled %s update (%s): %s", item.provider, item.reason, item.detail)
    if not rows:
        return 0
    query = (
        UnhandledUpdate.insert_many(list(rows.values()))
        .on_conflict(action="NOTHING", conflict_target=[UnhandledUpdate.dedupe_key])
        .returning(UnhandledUpdate.id)
    )
    return len(list(query.execute()))


def recent_counts(now: datetime, window: timedelta = ALERT_WINDOW) -> dict[str, dict[str, int]]:
    """Per provider, how many unhandled updates of each reason arrived within `window`."""
    rows = (
        UnhandledUpdate.select(
            UnhandledUpdate.provider, UnhandledUpdate.reason, fn.COUNT(SQL("*")).alias("n")
        )
        .where(UnhandledUpdate.received_at >= now - window)
        .group_by(UnhandledUpdate.provider, UnhandledUpdate.reason)
    )
    counts: dict[str, dict[str, int]] = {}
    for row in rows.dicts():
        counts.setdefault(row["provider"], {})[row["reason"]] = row["n"]
    return counts
