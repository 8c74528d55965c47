"""Analytics: daily rollups of message outcomes, and messages indexed by creation time
so that one day's rollup reads only that day's messages."""
from peewee import *


def up(migrator, db):
    class DailyStat(Model):
        day = DateField()
        template = CharField(max_length=128, default='')
        variant = CharField(max_length=64, default='')
        language = CharField(max_length=16, default='')
        source = CharField(max_length=32, default='')
        category = CharField(max_length=16)
        messages = IntegerField(default=0)
        sent = IntegerField(default=0)
        delivered = IntegerField(default=0)
        read = IntegerField(default=0)
        failed = IntegerField(default=0)
        suppressed = IntegerField(default=0)
        deferred = IntegerField(default=0)
        failed_by_code = TextField(default='{}')
        suppressed_by_reason = TextField(default='{}')
        replied_24h = IntegerField(default=0)
        opted_out_7d = IntegerField(default=0)
        delivery_seconds_median = FloatField(null=True)
        read_seconds_median = FloatField(null=True)
        computed_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'daily_stat'
            indexes = ((('day', 'template', 'variant', 'language', 'source', 'category'), True),)
    db.create_tables([DailyStat])

    migrator.migrate(migrator.add_index('message', ('created_at',), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index('message', 'message_created_at'))
    migrator.migrate(migrator.drop_table('daily_stat'))
