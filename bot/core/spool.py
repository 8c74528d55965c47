"""A durable spool (a Redis stream) for webhook senders that never redeliver.

Interakt and WooCommerce drop a delivery that fails, so their verified raw bodies are
written here before anything else and removed only once the database has them. If the
database is down the entries wait; the sweeper drains them when it is back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)

STREAM = "dakiya:spool"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    kind: str  # "order:<source>" or "whatsapp:<provider>"
    body: bytes
    headers: dict[str, str]


def put(conn: redis.Redis, kind: str, body: bytes, headers: dict[str, str]) -> str | None:
    """Spool a delivery; its entry id, or None when Redis itself is unreachable."""
    try:
        entry_id = conn.xadd(STREAM, {"kind": kind, "body": body, "headers": json.dumps(headers)})
    except redis.RedisError as exc:
        log.error("could not spool a %s delivery: %s", kind, exc)
        return None
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def remove(conn: redis.Redis, entry_id: str | None) -> None:
    if entry_id is None:
        return
    try:
        conn.xdel(STREAM, entry_id)
    except redis.RedisError as exc:  # left behind, it is drained again: harmless, idempotent
        log.warning("could not remove spool entry %s: %s", entry_id, exc)


def entries(conn: redis.Redis, count: int = 500) -> list[Entry]:
    """The oldest spooled deliveries, oldest first."""
    return [read_entry(entry_id, fields) for entry_id, fields in conn.xrange(STREAM, count=count)]


def read_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> Entry:
    """One stream entry; a malformed one (not written by `put`) comes back with the kind
    "unreadable", which the drainer moves to the dead letters instead of failing on."""
    try:
        return Entry(
            id=entry_id.decode(),
            kind=fields[b"kind"].decode(),
            body=fields[b"body"],
            headers=json.loads(fields[b"headers"]),
        )
    except (KeyError, ValueError):
        return Entry(
            id=entry_id.decode(), kind="unreadable", body=fields.get(b"body", b""), headers={}
        )


def size(conn: redis.Redis) -> int:
    return conn.xlen(STREAM)
