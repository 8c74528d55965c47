"""The batch sender claims "the oldest due messages of a queue", and never an expired lease
whose receipt (by callback data) is stored: indexes that serve both."""
from peewee import *


def up(migrator, db):
    migrator.migrate(migrator.add_index('message', ('queue', 'state', 'id'), False))
    migrator.migrate(migrator.add_index('status_event', ('callback_data',), False))


def down(migrator, db):
    migrator.migrate(migrator.drop_index('status_event', 'status_event_callback_data'))
    migrator.migrate(migrator.drop_index('message', 'message_queue_state_id'))
