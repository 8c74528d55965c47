"""Admin users with roles, and settings changed at run time."""
from peewee import *


def up(migrator, db):
    class AdminUser(Model):
        username = CharField(unique=True, max_length=64)
        password_hash = CharField()
        role = CharField(max_length=16)
        disabled = BooleanField(default=False)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'admin_user'
    db.create_tables([AdminUser])

    class RuntimeSetting(Model):
        key = CharField(unique=True, max_length=64)
        value = TextField()
        updated_by = CharField(max_length=64)
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'runtime_setting'
    db.create_tables([RuntimeSetting])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('runtime_setting'))
    migrator.migrate(migrator.drop_table('admin_user'))
