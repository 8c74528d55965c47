"""Admin API for CRMs: upsert customers in bulk from JSON, checked like the CSV import
(each bad item reported with its reasons, good ones written) and idempotent."""

from __future__ import annotations

from flask import jsonify
from marshmallow import Schema, fields, validate

from bot.core.models import utcnow
from bot.customers import customers_csv
from bot.extensions import services
from bot.web.admin import bp
from bot.web.auth import actor
from bot.web.contract import endpoint

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
    upserted = fields.Integer(metadata={"description": "created + updated + unchanged"})
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer(metadata={"description": "known customers already as the item"})
    rejected = fields.List(fields.Nested(RejectedItemSchema))


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
    report = customers_csv.upsert_customers(
        body["customers"],
        services().settings.default_region,
        actor(),
        utcnow(),
        salt=services().settings.suppression_salt,
    )
    return jsonify(
        {
            "upserted": report.imported,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "rejected": [
                {"index": row.row, "phone": row.masked_phone, "errors": row.errors}
                for row in sorted(report.rejected, key=lambda row: row.row)
            ],
        }
    )
