"""Alerts: each condition's firing and resolution, so every process agrees on what
admins were already told (bot/observability/alerts.py)."""
from peewee import *


def up(migrator, db):
    class Alert(Model):
        key = CharField(max_length=128)
        state = CharField(max_length=16)
        severity = CharField(max_length=16)
        text = TextField()
        fired_at = DateTimeField()
        notified_at = DateTimeField()
        resolved_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'alert'
            indexes = ((('state', 'key'), False),)
    db.create_tables([Alert])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('alert'))
