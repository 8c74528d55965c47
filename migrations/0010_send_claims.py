"""The batch sender claims "the oldest due messages of a queue": an index that serves it."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_index('message', ('queue', 'state', 'id'), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index('message', 'message_queue_state_id'))
