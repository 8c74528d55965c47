"""`template_category`: the category Meta says a template is in, from its completed
`template_category_update` (PROVIDERS.md §9.3). A new table; nothing existing changes.
"""

from peewee import *


def up(migrator, db):
    class TemplateCategory(Model):
        template = CharField(max_length=128)
        language = CharField(max_length=16)
        category = CharField(max_length=40)
        previous_category = CharField(max_length=40, null=True)
        template_id = CharField(max_length=64, null=True)
        changed_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'template_category'
            indexes = ((('template', 'language'), True),)

    db.create_tables([TemplateCategory])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('template_category'))
