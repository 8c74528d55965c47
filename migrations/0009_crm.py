"""CRM webhooks: the events a shop's CRM hears about, and every delivery attempt."""
from peewee import *


def up(migrator, db):
    class OutboundEvent(Model):
        type = CharField(max_length=32)
        payload = TextField()
        created_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'outbound_event'
    db.create_tables([OutboundEvent])

    class WebhookDelivery(Model):
        event = ForeignKeyField(OutboundEvent, on_delete='CASCADE')
        url = TextField()
        attempt = IntegerField(default=1)
        state = CharField(max_length=16, default='pending')
        status_code = IntegerField(null=True)
        error = TextField(null=True)
        next_attempt_at = DateTimeField()
        attempted_at = DateTimeField(null=True)
        delivered_at = DateTimeField(null=True)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'webhook_delivery'
            indexes = ((('state', 'next_attempt_at'), False),)
    db.create_tables([WebhookDelivery])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('webhook_delivery'))
    migrator.migrate(migrator.drop_table('outbound_event'))
