"""Campaigns: a template sent to a segment of customers, and each message's campaign."""
from peewee import *


def up(migrator, db):
    class Campaign(Model):
        name = CharField(max_length=200)
        template = CharField(max_length=128)
        languages = TextField(default='[]')
        category = CharField(max_length=16, default='marketing')
        params = TextField(default='[]')
        fallbacks = TextField(default='{}')
        segment = TextField(default='{}')
        schedule = TextField(null=True)
        state = CharField(index=True, max_length=16, default='draft')
        created_by = CharField(max_length=200)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        launched_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'campaign'
    db.create_tables([Campaign])

    migrator.migrate(migrator.add_column(
        'message', 'campaign_id',
        ForeignKeyField(Campaign, field=Campaign.id, null=True, on_delete='SET NULL'),
    ))


def down(migrator, db):
    migrator.migrate(migrator.drop_index('message', 'message_campaign_id'))
    migrator.migrate(migrator.drop_column('message', 'campaign_id'))
    migrator.migrate(migrator.drop_table('campaign'))
