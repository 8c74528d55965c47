"""Admin API for CRMs: upsert customers in bulk from JSON, checked like the CSV import
(each bad item reported with its reasons, good ones written) and idempotent."""

from __future__ import annotations

import uuid

from flask import jsonify
from marshmallow import Schema, fields, validate

from bot import customers_csv
from bot.admin import bp
from bot.api import endpoint
from bot.auth import actor
from bot.extensions import services
from bot.models import utcnow, write_transaction
from bot.privacy import audit

MAX_ITEMS = 1000


class CustomerItemSchema(Schema):
    phone = fields.String(required=True, metadata={"description": "E.164, or national"})
    name = fields.String(allow_none=True)
    language = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    tags = fields.List(fields.String(), allow_none=True)
    country = fields.String(allow_none=True, metadata={"description": "for a national number"})


class BulkUpsertSchema(Schema):
    customers = fields.List(
        fields.Nested(CustomerItemSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
    )


class RejectedItemSchema(Schema):
    index = fields.Integer(metadata={"description": "position in `customers`, from 0"})
    phone = fields.String(allow_none=True, metadata={"description": "masked"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class BulkReportSchema(Schema):
    upserted = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    rejected = fields.List(fields.Nested(RejectedItemSchema))


def as_csv_values(item: dict) -> dict:
    """An item in the CSV import's terms, so both are checked by the same rules."""
    values = {k: v for k, v in item.items() if v is not None and k != "tags"}
    if item.get("tags") is not None:
        values["tags"] = "|".join(item["tags"])
    return values


@bp.put("/api/customers/bulk")
@endpoint(
    tag="customers",
    body=BulkUpsertSchema,
    response=BulkReportSchema,
    errors=(400, 401),
    example={
        "customers": [
            {"phone": "+919876543210", "name": "Ravi Kumar", "language": "hi", "tags": ["crm"]},
            {"phone": "98123 45699", "country": "IN", "name": "Meera", "timezone": "Asia/Kolkata"},
        ]
    },
)
def upsert_customers(body: dict):
    """Create or update up to 1,000 customers; the same body twice changes nothing more."""
    now = utcnow()
    items = [(index, as_csv_values(item)) for index, item in enumerate(body["customers"])]
    rows = customers_csv.validate_rows(items, services().settings.default_region)
    report = customers_csv.ImportReport(import_id=str(uuid.uuid4()), dry_run=False)
    report.rows = len(rows)
    report.rejected = [row for row in rows if row.errors]
    with write_transaction():
        customers_csv._import_batch([row for row in rows if not row.errors], report, now)
    audit(actor(), "upsert_customers", report.import_id, report.counts(), now)
    return jsonify(
        {
            "upserted": report.imported,
            "created": report.created,
            "updated": report.updated,
            "rejected": [
                {"index": row.row, "phone": row.masked_phone, "errors": row.errors}
                for row in sorted(report.rejected, key=lambda row: row.row)
            ],
        }
    )
