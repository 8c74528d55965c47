"""Statements compiled once: re-run with new values, and refused when the query they
build does not take exactly their fields' values as parameters."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from bot.core.models import Order
from bot.core.statements import BatchStatement, Statement, columns, row_values


def _insert(values: dict):
    return Order.insert(values).returning(Order)


def test_a_statement_runs_again_with_new_values_and_reads_back_typed_models(app):
    insert = Statement(Order, columns(Order), _insert)
    at = datetime(2026, 11, 24, 10, 5, 7)
    made = [
        insert.rows(row_values(Order(source="generic", external_id=f"S{i}", total=Decimal(i))))
        for i in range(3)
    ]
    assert [(o.external_id, o.total) for (o,) in made] == [(f"S{i}", Decimal(i)) for i in range(3)]
    (late,) = insert.rows(
        row_values(Order(source="generic", external_id="S9", created_at=at, updated_at=at))
    )
    assert late.created_at == at and not late.dirty_fields
    assert Order.select().count() == 4


def test_a_query_whose_parameters_differ_from_the_fields_is_refused(app):
    only_source = Statement(Order, [Order.source], _insert)
    with pytest.raises(ValueError, match="parameters differ"):
        only_source.execute(row_values(Order(source="generic", external_id="X")))


def _insert_many(rows: list[dict]):
    return Order.insert_many(rows).returning(Order.external_id)


def test_a_batch_statement_runs_for_any_number_of_rows_and_keeps_the_latest_sizes(app):
    insert = BatchStatement(Order, columns(Order), _insert_many, sizes=2)
    made = []
    for run, size in enumerate([2, 1, 3, 2, 1]):
        rows = [row_values(Order(source="generic", external_id=f"B{run}.{i}")) for i in range(size)]
        made += [external_id for (external_id,) in insert.execute(rows).fetchall()]
    assert sorted(made) == sorted(o.external_id for o in Order.select())
    assert len(made) == 9
    assert [size for _, size in insert._sql] == [2, 1]  # memory: only the 2 used last kept


def test_a_batch_query_whose_parameters_differ_from_the_fields_is_refused(app):
    only_source = BatchStatement(Order, [Order.source], _insert_many)
    with pytest.raises(ValueError, match="parameters differ"):
        only_source.execute([row_values(Order(source="generic", external_id="X"))])
