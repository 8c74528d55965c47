"""Per-message pricing (PROVIDERS.md §9.2): `message_pricing`, what each sent message is
billed as, and `daily_spend`, its daily rollup.

Meta's receipts stored before this migration keep their `pricing` in `status_event.payload`;
each message's first such receipt becomes its `message_pricing` row, so spend is known
for the past too. Nothing is rewritten or removed.
"""
import json
from datetime import datetime, timezone

import phonenumbers
from peewee import *

BATCH = 1000


def up(migrator, db):
    class MessagePricing(Model):
        provider = CharField(max_length=16)
        provider_message_id = CharField(max_length=128, unique=True)
        billable = BooleanField()
        category = CharField(max_length=40)
        type = CharField(max_length=40, null=True)
        pricing_model = CharField(max_length=16, null=True)
        country = CharField(max_length=2, null=True)
        priced_at = DateTimeField(index=True)
        received_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'message_pricing'

    class DailySpend(Model):
        day = DateField()
        template = CharField(max_length=128, default='')
        category = CharField(max_length=40)
        country = CharField(max_length=2, default='')
        billable = IntegerField(default=0)
        free = IntegerField(default=0)
        computed_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'daily_spend'
            indexes = ((('day', 'template', 'category', 'country'), True),)

    db.create_tables([MessagePricing, DailySpend])

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    seen = set()
    last_id = 0
    while True:
        cursor = db.execute_sql(
            'SELECT id, provider_message_id, occurred_at, payload FROM status_event'
            ' WHERE provider = %s AND id > %s AND payload LIKE %s ORDER BY id LIMIT %s'
            % (db.param, db.param, db.param, db.param),
            ('meta', last_id, '%"pricing"%', BATCH),
        )
        rows = cursor.fetchall()
        if not rows:
            break
        last_id = rows[-1][0]
        found = []
        for _, provider_message_id, occurred_at, payload in rows:
            pricing = _pricing(payload)
            if pricing is None or provider_message_id in seen:
                continue
            seen.add(provider_message_id)
            found.append({
                'provider': 'meta',
                'provider_message_id': provider_message_id,
                'priced_at': occurred_at,
                'received_at': now,
                **pricing,
            })
        if found:
            (MessagePricing.insert_many(found)
             .on_conflict(action='NOTHING', conflict_target=[MessagePricing.provider_message_id])
             .execute())


def _pricing(payload):
    """A stored Meta receipt's pricing, as the provider parses it now; None without one."""
    try:
        status = json.loads(payload) if isinstance(payload, str) else payload
    except ValueError:
        return None
    pricing = status.get('pricing') if isinstance(status, dict) else None
    if not isinstance(pricing, dict):
        return None
    billable, category = pricing.get('billable'), pricing.get('category')
    if not isinstance(billable, bool) or not isinstance(category, str) or not category:
        return None
    kind, model = pricing.get('type'), pricing.get('pricing_model')
    return {
        'billable': billable,
        'category': category.lower()[:40],
        'type': kind.lower()[:40] if isinstance(kind, str) and kind else None,
        'pricing_model': model.upper()[:16] if isinstance(model, str) and model else None,
        'country': _country(status.get('recipient_id'), status.get('recipient_user_id')),
    }


def _country(recipient_id, user_id):
    if isinstance(recipient_id, str) and recipient_id.isdigit():
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse('+' + recipient_id))
        except phonenumbers.NumberParseException:
            region = None
        if region and region != 'ZZ':
            return region
    if isinstance(user_id, str) and len(user_id) > 3 and user_id[2] == '.' and user_id[:2].isalpha():
        return user_id[:2].upper()
    return None


def down(migrator, db):
    migrator.migrate(migrator.drop_table('daily_spend'))
    migrator.migrate(migrator.drop_table('message_pricing'))
