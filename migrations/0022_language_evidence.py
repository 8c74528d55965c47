"""Where a customer's language comes from (issue 15): `customer.language_source`
("customer", "admin", "shop"; existing rows None: a hint, as a storefront locale is)
and `customer.written_language`, the language of their latest message. Nothing existing
is rewritten.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("customer", "language_source", CharField(max_length=16, null=True)),
        migrator.add_column("customer", "written_language", CharField(max_length=16, null=True)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("customer", "language_source"),
        migrator.drop_column("customer", "written_language"),
    )
