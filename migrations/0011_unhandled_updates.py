"""Unhandled updates: the parts of signed WhatsApp webhooks Dakiya could not read or does
not act on, kept raw with the reason instead of refusing the delivery."""
from peewee import *


def up(migrator, db):
    class UnhandledUpdate(Model):
        provider = CharField(max_length=16)
        kind = CharField(max_length=64)
        reason = CharField(max_length=32, index=True)
        detail = TextField()
        location = CharField(max_length=255, default='')
        phone = CharField(max_length=20, null=True, index=True)
        payload = TextField(null=True)
        dedupe_key = CharField(max_length=64, unique=True)
        received_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'unhandled_update'
    db.create_tables([UnhandledUpdate])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('unhandled_update'))
