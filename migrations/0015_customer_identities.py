"""Customers known by phone, by business-scoped user id (BSUID), or both (PROVIDERS.md §9.1).

A customer may now have no phone number: `customer.phone` becomes nullable and gains
`user_id` (the BSUID, unique), `parent_user_id` and `username`. A message we send and a
message we receive may likewise name a BSUID instead of a number. Existing rows keep
their phone and get no BSUID; nothing is rewritten.
"""
from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.drop_not_null('customer', 'phone'),
        migrator.add_column('customer', 'user_id', CharField(max_length=160, null=True)),
        migrator.add_column('customer', 'parent_user_id', CharField(max_length=160, null=True)),
        migrator.add_column('customer', 'username', CharField(max_length=64, null=True)),
        migrator.add_index('customer', ('user_id',), True),
        migrator.drop_not_null('message', 'phone'),
        migrator.add_column('message', 'user_id', CharField(max_length=160, null=True)),
        migrator.drop_not_null('inbound_message', 'phone'),
        migrator.add_column('inbound_message', 'user_id', CharField(max_length=160, null=True)),
        migrator.add_index('inbound_message', ('user_id',), False),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_index('inbound_message', 'inbound_message_user_id'),
        migrator.drop_column('inbound_message', 'user_id'),
        migrator.drop_column('message', 'user_id'),
        migrator.drop_index('customer', 'customer_user_id'),
        migrator.drop_column('customer', 'username'),
        migrator.drop_column('customer', 'parent_user_id'),
        migrator.drop_column('customer', 'user_id'),
    )
