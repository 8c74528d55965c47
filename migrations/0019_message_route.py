"""Which of the provider's send APIs took a message (`message.route`): empty for the usual
one, `marketing_messages` for Meta's Marketing Messages API (PROVIDERS.md §9.3). Existing
messages went through /messages and keep an empty route; nothing is rewritten.
"""

from peewee import *


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("message", "route", CharField(max_length=32, null=True)),
    )


def down(migrator, db):
    migrator.migrate(migrator.drop_column("message", "route"))
