"""Language tags in one spelling: a customer's language and an inbound message's keyword
language as BCP 47 (`en_IN`, `en_in` -> `en-IN`), as bot.core.languages writes them
now; a message's template language as Meta's code (`pt-BR` -> `pt_BR`), as it is sent.
A tag Babel does not know is left as it was. Only the columns' spelling changes."""
from babel import Locale, UnknownLocaleError


def _bcp47(value):
    text = value.strip().replace('_', '-')
    if not text or text.split('-')[0].lower() in ('root', 'und'):
        return value
    try:
        locale = Locale.parse(text, sep='-')
    except (UnknownLocaleError, ValueError, TypeError):
        return value
    if locale.territory and locale.territory not in text.upper().split('-')[1:]:
        locale = Locale(locale.language, script=locale.script, variant=locale.variant)
    return str(locale).replace('_', '-')


def _template_code(value):
    return value.replace('-', '_')


def _respell(db, table, column, spell):
    cursor = db.execute_sql(
        f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'
    )
    for (value,) in cursor.fetchall():
        new = spell(value)
        if new != value:
            db.execute_sql(
                f'UPDATE "{table}" SET "{column}" = %s WHERE "{column}" = %s'.replace(
                    '%s', db.param
                ),
                (new, value),
            )


def up(migrator, db):
    with db.atomic():
        _respell(db, 'customer', 'language', _bcp47)
        _respell(db, 'inbound_message', 'language', _bcp47)
        _respell(db, 'message', 'language', _template_code)


def down(migrator, db):
    pass  # the old spellings were several; any of them still reads
