"""Migrations: applied in order by the release phase, and they build exactly the schema
the models describe (on SQLite and on PostgreSQL)."""

from __future__ import annotations

from playhouse.schema_diff import diff_models

from bot.core.models import ALL_MODELS, db


def test_migrated_schema_matches_the_models(app):
    diff = diff_models(db.obj, ALL_MODELS)
    assert not diff, diff


def test_every_model_is_listed_so_it_is_migrated_checked_and_truncated():
    from bot.core.models import BaseModel

    assert set(BaseModel.__subclasses__()) == set(ALL_MODELS)
