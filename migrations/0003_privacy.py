"""Privacy: suppressions that survive erasure (salted hashes only) and the audit log."""
from peewee import *


def up(migrator, db):
    class Suppression(Model):
        phone_hash = CharField(unique=True, max_length=64)
        reason = CharField(max_length=32)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'suppression'
    db.create_tables([Suppression])

    class AuditLog(Model):
        actor = CharField(max_length=200)
        action = CharField(index=True, max_length=32)
        subject = CharField(null=True, max_length=255)
        details = TextField(null=True)
        created_at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'audit_log'
    db.create_tables([AuditLog])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('audit_log'))
    migrator.migrate(migrator.drop_table('suppression'))
