"""Conversation state: the 24-hour window, agent handoff, intents of inbound messages."""
from peewee import *

def up(migrator, db):
    migrator.migrate(migrator.add_column('customer', 'last_inbound_at', DateTimeField(null=True)))
    migrator.migrate(migrator.add_column('customer', 'needs_agent_since', DateTimeField(index=True, null=True)))
    migrator.migrate(migrator.add_column('customer', 'last_fallback_reply_at', DateTimeField(null=True)))
    migrator.migrate(migrator.add_column('order', 'stage', CharField(null=True, max_length=32)))
    migrator.migrate(migrator.add_column('inbound_message', 'button_payload', CharField(null=True, max_length=512)))
    migrator.migrate(migrator.add_column('inbound_message', 'intent', CharField(null=True, max_length=16)))
    migrator.migrate(migrator.add_column('inbound_message', 'language', CharField(null=True, max_length=16)))


def down(migrator, db):
    migrator.migrate(migrator.drop_index('customer', 'customer_needs_agent_since'))
    migrator.migrate(migrator.drop_column('order', 'stage'))
    migrator.migrate(migrator.drop_column('inbound_message', 'language'))
    migrator.migrate(migrator.drop_column('inbound_message', 'intent'))
    migrator.migrate(migrator.drop_column('inbound_message', 'button_payload'))
    migrator.migrate(migrator.drop_column('customer', 'last_fallback_reply_at'))
    migrator.migrate(migrator.drop_column('customer', 'needs_agent_since'))
    migrator.migrate(migrator.drop_column('customer', 'last_inbound_at'))
