"""Dead letters of the spool: deliveries that failed for a reason other than an outage,
kept with their error for an admin to retry or discard."""
from peewee import *


def up(migrator, db):
    class SpoolDeadLetter(Model):
        spool_id = CharField(max_length=32, unique=True)
        kind = CharField(max_length=64)
        body = BlobField()
        headers = TextField()
        error = TextField()
        attempts = IntegerField(default=1)
        spooled_at = DateTimeField()
        failed_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'spool_dead_letter'
    db.create_tables([SpoolDeadLetter])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('spool_dead_letter'))
