"""Insert a campaign's customers and queued message rows in bulk, straight into the database.

`python -m bench.seed --count 100000 --prefix 97 --out ids.json` (DATABASE_URL from the
environment): N opted-in customers with distinct Indian mobile numbers and, for each,
one queued utility template message of a running campaign, due now. Utility so that no
quiet hours apply whatever the hour; the customers are opted in to marketing too, so
`--category marketing` works in daytime. Writes the message ids to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta

from bot.campaigns.campaigns import KIND
from bot.core.models import Campaign, Customer, Message, State, db, utcnow
from bot.extensions import open_database

CHUNK = 500  # rows per INSERT: under SQLite's bound-parameter limit for every table


def seed(count: int, prefix: str, category: str, queue: str, template: str) -> list[int]:
    now = utcnow()
    run = str(time.time_ns())
    with db.atomic():
        campaign = Campaign.create(
            name=f"bench {run}",
            template=template,
            languages=["en"],
            category=category,
            params=["name"],
            state="running",
            created_by="bench",
            launched_at=now,
        )
        phones = [f"+91{prefix}{i:08d}" for i in range(count)]
        for start in range(0, count, CHUNK):
            rows = [
                {
                    Customer.phone: phone,
                    Customer.wa_id: phone[1:],
                    Customer.name: f"Bench {start + n}",
                    Customer.language: "en",
                    Customer.timezone: "Asia/Kolkata",
                    Customer.marketing_opt_in: True,
                    Customer.created_at: now,
                    Customer.updated_at: now,
                }
                for n, phone in enumerate(phones[start : start + CHUNK])
            ]
            Customer.insert_many(rows).execute()
        ids = dict(
            Customer.select(Customer.phone, Customer.id)
            .where(Customer.phone.startswith(f"+91{prefix}"))
            .tuples()
        )
        due = now - timedelta(seconds=1)
        for start in range(0, count, CHUNK):
            rows = [
                {
                    Message.campaign: campaign.id,
                    Message.customer: ids[phone],
                    Message.phone: phone,
                    Message.dedupe_key: f"campaign:{campaign.id}:{ids[phone]}",
                    Message.kind: KIND,
                    Message.category: category,
                    Message.queue: queue,
                    Message.template_name: template,
                    Message.language: "en",
                    Message.params: {"body": [f"Bench {start + n}"]},
                    Message.state: State.QUEUED,
                    Message.next_attempt_at: due,
                    Message.created_at: now,
                    Message.updated_at: now,
                }
                for n, phone in enumerate(phones[start : start + CHUNK])
            ]
            Message.insert_many(rows).execute()
        return [
            m
            for (m,) in Message.select(Message.id)
            .where(Message.campaign == campaign.id)
            .order_by(Message.id)
            .tuples()
        ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", default="97", help="digits after +91 (distinct per run)")
    parser.add_argument("--category", default="utility", choices=("utility", "marketing"))
    parser.add_argument("--queue", default="campaigns", help="Message.queue of the rows")
    parser.add_argument("--template", default="festival_sale")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    db.initialize(open_database(os.environ["DATABASE_URL"]))
    started = time.monotonic()
    ids = seed(args.count, args.prefix, args.category, args.queue, args.template)
    seconds = time.monotonic() - started
    with open(args.out, "w") as out:
        json.dump({"ids": ids, "seconds": round(seconds, 2)}, out)
    db.close()


if __name__ == "__main__":
    main()
