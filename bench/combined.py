"""The combined phase (issue 19): a campaign at `--combined-rate` while the fake posts
every send's sent, delivered and read receipts back, one status per POST as Meta does,
and campaign recipients write STOP mid-run.

Reports the system's CPU per message sent and per receipt (the load generator is the
fake here, left out), receipts waiting in the inbox second by second (the receipt lag:
it must not grow), and STOP -> the last campaign message that reached that customer
(0 when none did after the STOP), p50/p99. Each STOP is written by a recipient whose
message is due 0.3-3 s later, so a STOP honoured late shows as a message sent after it.
"""

from __future__ import annotations

import copy
import json
import random
import time

import redis
import requests

from bench.measure import FakeLog, busiest_window, count_rows, execute_sql, latency_summary
from bench.stack import APP_SECRET, ROOT, Stack
from bot.core.signing import sign_hmac

#: Meta's text message webhook, as the tests replay it (tests/payloads/meta/messages.json).
MESSAGES = json.loads((ROOT / "tests" / "payloads" / "meta" / "messages.json").read_text())

#: Workers re-read run-time settings this often (bot/core/runtime.py REFRESH_SECONDS).
SETTINGS_REFRESH_SECONDS = 5.0
PREFIX = "95"


def stop_body(phone_digits: str, n: int) -> bytes:
    body = copy.deepcopy(MESSAGES["text"])
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = phone_digits
    message = value["messages"][0]
    message.update(
        {"from": phone_digits, "id": f"wamid.BENCHSTOP{n}", "timestamp": str(int(time.time()))}
    )
    message["text"] = {"body": "STOP"}
    return json.dumps(body).encode()


def post_stop(session: requests.Session, url: str, phone_digits: str, n: int) -> int:
    raw = stop_body(phone_digits, n)
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + sign_hmac(APP_SECRET, raw),
    }
    return session.post(url, data=raw, headers=headers, timeout=30).status_code


def set_send_rate(stk: Stack, rate: int | None) -> None:
    """The run-time override of SEND_RATE_PER_SECOND (an admin's, bot/core/runtime.py)."""
    execute_sql(stk.database_url, "DELETE FROM runtime_setting WHERE key = 'send_rate_per_second'")
    if rate is not None:
        execute_sql(
            stk.database_url,
            "INSERT INTO runtime_setting (key, value, updated_by, updated_at) "
            f"VALUES ('send_rate_per_second', '{int(rate)}', 'bench', CURRENT_TIMESTAMP)",
        )
    time.sleep(SETTINGS_REFRESH_SECONDS + 1)


def combined(stk: Stack, args, fake_log: FakeLog, deadline: float, seed, trigger, cpu) -> dict:
    """Run the phase; `seed`, `trigger` and `cpu` are bench.phases' helpers."""
    cpu_now, cpu_during = cpu
    count, rate = args.combined, args.combined_rate
    ids, _ = seed(stk, count, PREFIX, "utility", deadline)
    phone = [f"91{PREFIX}{i:08d}" for i in range(count)]
    set_send_rate(stk, rate)
    stk.fake.configure(receipts_url=f"{stk.web_url}/webhooks/whatsapp/meta")
    expected = count / rate
    stop_at = [expected * (0.2 + 0.6 * k / max(1, args.stops)) for k in range(args.stops)]
    chosen: dict[int, float] = {}  # recipient index -> when their STOP was posted
    waiting: list[tuple[float, int]] = []  # (seconds in, receipts kept, not taken in)
    session = requests.Session()
    conn = redis.Redis.from_url(stk.redis_url)
    jobs: list[list[int]] = []  # per second: jobs waiting on the orders, statuses queues
    url = f"{stk.web_url}/webhooks/whatsapp/meta"
    draw = random.Random(19)
    before = cpu_now(stk)
    started = time.time()
    trigger(stk)
    next_sample = started
    try:
        while time.monotonic() < deadline:
            now = time.time()
            fake_log.poll()
            sent = sum(1 for mid in ids if mid in fake_log.accepted)
            if stop_at and now - started >= stop_at[0]:
                stop_at.pop(0)
                ahead = sent + int(rate * draw.uniform(0.3, 3.0))
                if ahead < count and ahead not in chosen:
                    chosen[ahead] = time.time()
                    post_stop(session, url, phone[ahead], ahead)
            if now >= next_sample:
                kept = count_rows(stk.database_url, "SELECT count(*) FROM inbox_entry")
                waiting.append((round(now - started, 1), kept))
                jobs.append([conn.llen(f"rq:queue:{q}") for q in ("orders", "statuses")])
                next_sample += 1.0
            settled = count_rows(
                stk.database_url,
                "SELECT count(*) FROM message WHERE kind = 'campaign' AND state NOT IN "
                f"('queued', 'sending', 'deferred') AND phone LIKE '+91{PREFIX}%'",
            )
            if settled >= count and not stop_at:
                break
            time.sleep(0.2)
        sends_done = time.time()
        while time.monotonic() < deadline:  # the last receipts taken in
            if count_rows(stk.database_url, "SELECT count(*) FROM inbox_entry") == 0:
                break
            time.sleep(0.2)
        applied_end = time.time()
        used = cpu_during(stk, before)
    finally:
        stk.fake.configure(receipts_url=None)
        set_send_rate(stk, None)
    fake_log.poll()
    sends = [fake_log.accepted[mid] for mid in ids if mid in fake_log.accepted]
    receipts = count_rows(
        stk.database_url,
        f"SELECT count(*) FROM status_event WHERE message_id IN "
        f"(SELECT id FROM message WHERE phone LIKE '+91{PREFIX}%')",
    )
    seconds = applied_end - started
    system = sum(used.get(name, 0.0) for name in ("web", "workers", "redis", "postgres"))
    late = []
    for i, posted in chosen.items():
        send = fake_log.accepted.get(ids[i])
        late.append(max(0.0, send.arrived - posted) if send else 0.0)
    suppressed = count_rows(
        stk.database_url,
        "SELECT count(*) FROM message WHERE kind = 'campaign' AND reason = 'opted_out' "
        f"AND phone LIKE '+91{PREFIX}%'",
    )
    third = max(1, len(waiting) // 3)
    early = [w for _, w in waiting[:third]]
    final = [w for _, w in waiting[-third:]]
    return {
        "messages": count,
        "rate": rate,
        "sent": len(sends),
        "send_seconds": round(sends_done - started, 2),
        "sends_per_s": round(len(sends) / (sends_done - started), 1) if sends else 0.0,
        "busiest_1s": busiest_window([s.arrived for s in sends])[0],
        "receipts_applied": receipts,
        "receipts_per_s": round(receipts / seconds, 1) if seconds > 0 else 0.0,
        "cpu": used,
        "cpu_ms_per_send": round(1000 * system * seconds / len(sends), 2) if sends else None,
        "cpu_ms_per_receipt": round(1000 * system * seconds / receipts, 2) if receipts else None,
        "inbox_waiting": waiting,
        "jobs_waiting": jobs,
        "inbox_waiting_first_third": round(sum(early) / len(early), 1) if early else 0,
        "inbox_waiting_last_third": round(sum(final) / len(final), 1) if final else 0,
        "stops": len(chosen),
        "stopped_recipients_suppressed": suppressed,
        "stop_to_last_message_ms": latency_summary(late),
    }
