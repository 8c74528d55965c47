"""A/B tests: experiments, the conversions shops post, and the variant each message
was sent with (bot/campaigns/experiments.py)."""
from peewee import *


def up(migrator, db):
    class Experiment(Model):
        name = CharField(unique=True, max_length=200)
        event_kind = CharField(max_length=32, null=True)
        campaign_id = IntegerField(null=True)
        variants = TextField()
        goal = CharField(max_length=16)
        conversion_days = IntegerField(default=7)
        state = CharField(max_length=16, default='draft', index=True)
        winner = CharField(max_length=64, null=True)
        auto_rollout = BooleanField(default=False)
        min_sample = IntegerField(default=100)
        started_at = DateTimeField(null=True)
        stopped_at = DateTimeField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'experiment'
    db.create_tables([Experiment])

    class Customer(Model):
        class Meta:
            database = db
            table_name = 'customer'

    class ConversionEvent(Model):
        customer = ForeignKeyField(Customer, on_delete='CASCADE')
        order_ref = CharField(max_length=64)
        occurred_at = DateTimeField(index=True)
        source = CharField(max_length=32)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'conversion_event'
            indexes = ((('customer', 'order_ref'), True),)
    db.create_tables([ConversionEvent])

    migrator.migrate(
        migrator.add_column('message', 'variant', CharField(max_length=64, null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('message', 'variant'))
    migrator.migrate(migrator.drop_table('conversion_event'))
    migrator.migrate(migrator.drop_table('experiment'))
