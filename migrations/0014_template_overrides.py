"""Template overrides per order event, instead of one edited copy of the whole map.

The old copy (runtime_setting "notifications", written by the first template edit) froze
every event; each of its events that differs from the map file becomes one override row,
an event equal to the file's entry follows the file again, and the copy is removed.
"""
import json
import os
import tomllib
from datetime import datetime, timezone
from pathlib import Path

from peewee import *

OLD_KEY = 'notifications'
DEFAULT_FILE = Path(__file__).resolve().parents[1] / 'bot' / 'core' / 'notifications.toml'


def _file_events():
    """The map file's events (NOTIFICATIONS_FILE, else the default); None if unreadable,
    in which case every event of the old copy is kept as an override."""
    path = os.environ.get('NOTIFICATIONS_FILE') or DEFAULT_FILE
    try:
        with open(path, 'rb') as fh:
            return tomllib.load(fh).get('events') or {}
    except (OSError, tomllib.TOMLDecodeError):
        return None


def up(migrator, db):
    class TemplateOverride(Model):
        event_kind = CharField(max_length=32, unique=True)
        mapping = TextField()
        updated_by = CharField(max_length=64)
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'template_override'
    db.create_tables([TemplateOverride])

    cursor = db.execute_sql(
        'SELECT value, updated_by, updated_at FROM runtime_setting WHERE key = %s'
        % db.param, (OLD_KEY,))
    row = cursor.fetchone()
    if row is None:
        return
    value, updated_by, updated_at = row
    events = (json.loads(value) or {}).get('events') or {}
    in_file = _file_events()
    now = updated_at or datetime.now(timezone.utc).replace(tzinfo=None)
    for kind, entry in events.items():
        if in_file is not None and in_file.get(kind) == entry:
            continue
        TemplateOverride.create(
            event_kind=kind,
            mapping=json.dumps(entry, ensure_ascii=False, sort_keys=True),
            updated_by=updated_by,
            updated_at=now,
        )
    db.execute_sql('DELETE FROM runtime_setting WHERE key = %s' % db.param, (OLD_KEY,))


def down(migrator, db):
    migrator.migrate(migrator.drop_table('template_override'))
