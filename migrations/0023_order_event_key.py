"""`order_event.event_key`: one shop event delivered under several delivery ids (Shopify
sends one per subscription, all with the same X-Shopify-Event-Id) is stored, and sends,
once. Nullable and unique; existing rows keep NULL (their webhook id stays their key).
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("order_event", "event_key", CharField(max_length=255, null=True)),
        migrator.add_index("order_event", ("event_key",), True),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index("order_event", "order_event_event_key"),
        migrator.drop_column("order_event", "event_key"),
    )
