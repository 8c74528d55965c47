"""Load generator: signed order events or Meta status webhooks, posted by an aiohttp client
from its own process so that the generator is not what a benchmark measures.

`python -m bench.loadgen orders --url U --count N [--start i --step P] --out f.json`
`python -m bench.loadgen statuses --url U --input messages.json --batch 10 --out f.json`
Several processes split one load with `--start`/`--step`. Times are `time.time()`, so they
compare with the fake provider's stamps; the output also carries the generator's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

import aiohttp

from bot.core.signing import sign_hmac
from tests.fakes.provider_server import meta_signature, status_webhook


def order_event(run: str, i: int) -> bytes:
    """A generic `placed` event for a distinct customer (README: generic order schema)."""
    event = {
        "event_id": f"bench-{run}-{i}",
        "event": "placed",
        "order": {"id": f"B{run}-{i}", "number": f"#{i}", "total": "499.00", "currency": "INR"},
        "customer": {
            "phone": f"+91 98{i:08d}",
            "name": f"Customer {i}",
            "language": "en",
            "country": "IN",
        },
    }
    return json.dumps(event).encode()


def order_posts(args) -> list[tuple[bytes, dict, int]]:
    posts = []
    for i in range(args.start, args.count, args.step):
        body = order_event(args.run, args.offset + i)
        headers = {
            "Content-Type": "application/json",
            "X-Signature-256": "sha256=" + sign_hmac(args.secret, body),
        }
        posts.append((body, headers, i))
    return posts


def status_posts(args) -> list[tuple[bytes, dict, int]]:
    """Per batch of messages, one webhook per status in order (sent, delivered, read)."""
    with open(args.input) as f:
        messages = json.load(f)[args.start :: args.step]
    posts = []
    now = int(time.time())
    for b in range(0, len(messages), args.batch):
        chunk = messages[b : b + args.batch]
        for n, status in enumerate(args.statuses.split(",")):
            statuses = [
                {
                    "id": wamid,
                    "status": status,
                    "timestamp": str(now + n),
                    "recipient_id": to,
                    "biz_opaque_callback_data": f"dakiya:{message_id}",
                }
                for message_id, wamid, to in chunk
            ]
            body = json.dumps(status_webhook(statuses, phone_number_id=args.phone_number_id))
            body = body.encode()
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": meta_signature(args.app_secret, body),
            }
            posts.append((body, headers, len(statuses)))
    return posts


async def post_all(url: str, posts: list, concurrency: int, ordered_groups: int) -> list:
    """Post everything with `concurrency` in flight; posts of one group (`ordered_groups`
    consecutive posts: a batch's sent/delivered/read) go one after another."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    groups = [posts[g : g + ordered_groups] for g in range(0, len(posts), ordered_groups)]
    queue: asyncio.Queue = asyncio.Queue()
    for group in groups:
        queue.put_nowait(group)
    records: list = []

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            while not queue.empty():
                for body, headers, tag in queue.get_nowait():
                    sent = time.time()
                    try:
                        async with session.post(url, data=body, headers=headers) as answer:
                            text = await answer.read()
                            status = answer.status
                    except (aiohttp.ClientError, TimeoutError):
                        text, status = b"", None
                    latency = time.time() - sent
                    ids = []
                    if status in (200, 202) and ordered_groups == 1:
                        ids = json.loads(text).get("message_ids", [])
                    records.append([tag, sent, latency, status, ids])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("orders", "statuses"))
    parser.add_argument("--url", required=True, help="the web tier's base URL")
    parser.add_argument("--out", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--count", type=int, default=0, help="orders: events to post")
    parser.add_argument("--offset", type=int, default=0, help="orders: first customer number")
    parser.add_argument("--run", default=str(int(time.time())), help="orders: event id prefix")
    parser.add_argument("--secret", default="", help="orders: ORDER_WEBHOOK_SECRET")
    parser.add_argument("--input", help="statuses: JSON [[message_id, wamid, to], ...]")
    parser.add_argument("--batch", type=int, default=10, help="statuses per webhook")
    parser.add_argument("--statuses", default="sent,delivered,read")
    parser.add_argument("--app-secret", default="", help="statuses: META_APP_SECRET")
    parser.add_argument("--phone-number-id", default="100000000000001")
    parser.add_argument("--not-before", type=float, default=0.0, help="wall time to start at")
    args = parser.parse_args(argv)
    if args.mode == "orders":
        posts, path, group = order_posts(args), "/webhooks/orders", 1
    else:
        posts, path, group = status_posts(args), "/webhooks/whatsapp/meta", 0
        group = len(args.statuses.split(","))
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    delay = args.not_before - time.time()
    if delay > 0:
        time.sleep(delay)
    started = time.time()
    records = asyncio.run(post_all(args.url + path, posts, args.concurrency, group))
    wall = time.time() - started
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu.ru_utime - cpu_before.ru_utime) + (cpu.ru_stime - cpu_before.ru_stime)
    with open(args.out, "w") as out:
        json.dump({"records": records, "cpu_s": round(cpu_s, 3), "wall_s": round(wall, 3)}, out)


if __name__ == "__main__":
    main()
