"""`inbox_entry` (issue 19): a verified webhook delivery is kept raw by one INSERT and
answered; the workers take it in, in batches, and delete it. Nothing to backfill.
"""

from peewee import *


def up(migrator, db):
    class InboxEntry(Model):
        kind = CharField(max_length=64)
        lane = CharField(max_length=16)
        body = BlobField()
        headers = TextField(default='{}')
        received_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'inbox_entry'
            indexes = ((('lane', 'id'), False),)

    db.create_tables([InboxEntry])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('inbox_entry'))
