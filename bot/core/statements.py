"""Hot-path SQL statements compiled once per database, then re-run with new values.

Peewee rebuilds a statement's SQL text on every execute; for the webhook's upserts that
cost more CPU than the database itself did (1-2 ms for the order upsert). A statement
here has a fixed column list, so its text never changes: it is built with peewee the
first time (and its parameters checked against ours) and only re-bound afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from peewee import Field, Model, Query

from bot.core.models import db


def same_params(compiled: Sequence, ours: Sequence) -> bool:
    """Whether peewee's parameters are ours, value for value (a BLOB's driver wrapper,
    psycopg2's `Binary`, compares by identity: its wrapped bytes are compared)."""

    def plain(value: Any) -> Any:
        return getattr(value, "adapted", value)

    return len(compiled) == len(ours) and all(
        plain(a) == plain(b) for a, b in zip(compiled, ours, strict=True)
    )


class Statement:
    """A peewee query whose parameters are exactly `fields`' values, in that order.

    `build(values)` returns the peewee query for one set of values (a dict keyed by
    field name, a missing one is None); it is called once per database type to produce
    the SQL text.
    """

    def __init__(
        self, model: type[Model], fields: Sequence[Field], build: Callable[[dict], Query]
    ) -> None:
        self.model = model
        self.fields = tuple(fields)
        self.build = build
        self._sql: dict[type, str] = {}

    def params(self, values: dict) -> list:
        return [field.db_value(values.get(field.name)) for field in self.fields]

    def execute(self, values: dict):
        """Run the statement with `values`; returns the DB-API cursor."""
        params = self.params(values)
        kind = type(db.obj)
        sql = self._sql.get(kind)
        if sql is None:
            sql, compiled = self.build(values).sql()
            if not same_params(compiled, params):  # a build that does not match `fields`
                raise ValueError(f"parameters differ: {compiled!r} != {params!r}")
            self._sql[kind] = sql
        return db.execute_sql(sql, params)

    def rows(self, values: dict) -> list[Any]:
        """Run the statement and read what it RETURNs as (unsaved-changes-free) models."""
        cursor = self.execute(values)
        by_column = self.model._meta.columns
        fields = [by_column[column[0]] for column in cursor.description]
        found = []
        for row in cursor.fetchall():
            pairs = zip(fields, row, strict=True)
            instance = self.model(**{field.name: field.python_value(v) for field, v in pairs})
            instance._dirty.clear()
            found.append(instance)
        return found


class BatchStatement:
    """A multi-row statement (`INSERT … VALUES (…), (…), …`) whose parameters are
    `fields`' values row after row: its text depends only on the number of rows, so it
    is built once per database and row count (peewee spends more on building a
    500-row insert than the database on running it). The last `sizes` counts are kept.
    """

    def __init__(
        self,
        model: type[Model],
        fields: Sequence[Field],
        build: Callable[[list[dict]], Query],
        sizes: int = 8,
    ) -> None:
        self.row = Statement(model, fields, lambda values: build([values]))
        self.build = build
        self.sizes = sizes
        self._sql: dict[tuple[type, int], str] = {}

    def execute(self, rows: list[dict]):
        """Run the statement for `rows` (at least one); returns the DB-API cursor."""
        params = [param for values in rows for param in self.row.params(values)]
        key = (type(db.obj), len(rows))
        sql = self._sql.pop(key, None)
        if sql is None:
            sql, compiled = self.build(rows).sql()
            if not same_params(compiled, params):  # a build that does not match `fields`
                raise ValueError(f"parameters differ: {compiled!r} != {params!r}")
            while len(self._sql) >= self.sizes:
                del self._sql[next(iter(self._sql))]  # the least recently used
        self._sql[key] = sql  # (re)inserted last: most recently used
        return db.execute_sql(sql, params)


def insert_ignoring(conflict: Field, *returning: Field) -> Callable[[list[dict]], Query]:
    """A BatchStatement's build: `INSERT … ON CONFLICT (conflict) DO NOTHING RETURNING …`,
    the one shape of every idempotent multi-row insert on the hot paths."""
    model = conflict.model

    def build(rows: list[dict]) -> Query:
        query = model.insert_many(rows).on_conflict(action="NOTHING", conflict_target=[conflict])
        return query.returning(*returning)

    return build


def columns(model: type[Model]) -> list[Field]:
    """Every column of `model` but its primary key, in the model's (and peewee's) order."""
    return [f for f in model._meta.sorted_fields if f is not model._meta.primary_key]


def row_values(instance: Model) -> dict:
    """An unsaved model's values by field name, its defaults filled in."""
    return {f.name: instance.__data__.get(f.name) for f in columns(type(instance))}
