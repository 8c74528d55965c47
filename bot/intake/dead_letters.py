"""Dead letters of the spool: a spooled delivery that cannot be stored for any reason but
an outage is moved here, so it neither blocks the deliveries behind it nor is lost.

It is a database row, not a Redis key: as durable as the orders themselves, and it can
be written when the delivery's own write failed, since that transaction was rolled back
and this row holds only the raw bytes, the headers and the error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.core import spool
from bot.core.errors import UNSTORABLE
from bot.core.models import SpoolDeadLetter

#: Enough of an error to act on; a traceback stays in the log.
MAX_ERROR = 2000


def describe(exc: BaseException) -> str:
    """The error as stored: its type, message and the fields at fault if known,
    storable in any text column."""
    text = f"{type(exc).__name__}: {exc}".strip()
    fields = getattr(exc, "fields", None)  # a PayloadError names each bad field
    if fields:
        text += " " + json.dumps(fields, ensure_ascii=False, sort_keys=True)
    return UNSTORABLE.sub("", text)[:MAX_ERROR]


def spooled_at(entry_id: str) -> datetime:
    """When Redis took the entry: a stream id starts with its milliseconds."""
    millis = int(entry_id.partition("-")[0])
    return datetime.fromtimestamp(millis / 1000, UTC).replace(tzinfo=None)


def record(
    entry: spool.Entry, exc: BaseException, now: datetime, kept_at: datetime | None = None
) -> None:
    """Keep `entry` with its error. Moving the same entry twice (a crash between this
    and the spool's delete) keeps one row, with the latest error. `kept_at`: when it was
    taken, for an entry that is not a spool entry (the webhook inbox's)."""
    error = describe(exc)
    (
        SpoolDeadLetter.insert(
            spool_id=entry.id,
            kind=entry.kind,
            body=entry.body,
            headers=entry.headers,
            error=error,
            spooled_at=kept_at or spooled_at(entry.id),
            failed_at=now,
        )
        .on_conflict(
            conflict_target=[SpoolDeadLetter.spool_id],
            update={SpoolDeadLetter.error: error, SpoolDeadLetter.failed_at: now},
        )
        .execute()
    )


def as_entry(row: SpoolDeadLetter) -> spool.Entry:
    """The delivery again, as the spool drainer reads it."""
    return spool.Entry(id=row.spool_id, kind=row.kind, body=bytes(row.body), headers=row.headers)


def failed_again(row: SpoolDeadLetter, exc: BaseException, now: datetime) -> None:
    row.error, row.attempts, row.failed_at = describe(exc), row.attempts + 1, now
    row.save(only=[SpoolDeadLetter.error, SpoolDeadLetter.attempts, SpoolDeadLetter.failed_at])


def count() -> int:
    return SpoolDeadLetter.select().count()
