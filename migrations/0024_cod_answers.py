"""The cash-on-delivery round trip (issue 16): `order.cod_answer` / `cod_answered_at`,
and `shop_write_back`, the changes owed to the shop about an order. Existing orders have
no answer; nothing is rewritten.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("order", "cod_answer", CharField(max_length=16, null=True)),
        migrator.add_column("order", "cod_answered_at", DateTimeField(null=True)),
    )

    class Order(Model):
        class Meta:
            database = db
            table_name = 'order'

    class ShopWriteBack(Model):
        order = ForeignKeyField(Order, on_delete='CASCADE')
        action = CharField(max_length=16)
        state = CharField(max_length=16, default='pending', index=True)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(index=True)
        last_error = TextField(null=True)
        created_at = DateTimeField()
        done_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'shop_write_back'
            indexes = ((('order', 'action'), True),)

    db.create_tables([ShopWriteBack])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('shop_write_back'))
    migrator.migrate(
        migrator.drop_column("order", "cod_answer"),
        migrator.drop_column("order", "cod_answered_at"),
    )
