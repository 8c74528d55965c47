"""Customers' time zones under their canonical IANA names (Asia/Calcutta -> Asia/Kolkata):
phonenumbers' lookup gave the old names, which are stored no more (bot/core/zones.py).
Old names come from CLDR's alias table as Babel ships it, with the same rules as the
module (UTC stays UTC; a name the zone database lacks is not a target), kept here so
that the migration does what it did when it was written. Nothing to undo: both names
are the same zone, and the new one is the one to keep."""
from zoneinfo import available_timezones

from babel.core import get_global
from peewee import Table


def up(migrator, db):
    customer = Table("customer").bind(db)
    known = available_timezones()
    for old, new in sorted(get_global("zone_aliases").items()):
        new = "UTC" if new == "Etc/UTC" else new
        if old != new and new in known:
            customer.update(timezone=new).where(customer.c.timezone == old).execute()


def down(migrator, db):
    pass
