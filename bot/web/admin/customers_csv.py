"""Admin API routes for customers in bulk: CSV import with a per-row error report, and a
streamed CSV export; both written to the audit log."""

from __future__ import annotations

from flask import Response, jsonify, request, stream_with_context
from marshmallow import Schema, fields

from bot.core.audit import audit
from bot.core.errors import ApiError
from bot.core.models import utcnow
from bot.customers import customers_csv
from bot.extensions import services
from bot.web.admin import bp
from bot.web.auth import actor, may_export
from bot.web.contract import endpoint

CSV_TYPES = ("text/csv", "application/csv")
IMPORT_EXAMPLE = (
    "phone,name,language,timezone,tags,marketing_consent\r\n"
    "+919876543210,Ravi Kumar,hi,Asia/Kolkata,wholesale|repeat,yes\r\n"
)


class ImportQuery(Schema):
    dry_run = fields.Boolean(load_default=False)


class RejectedRowSchema(Schema):
    row = fields.Integer(metadata={"description": "row number in the file; the header is 1"})
    phone = fields.String(
        allow_none=True,
        metadata={
            "description": "masked (+91********78), or 'invalid: …78' for a value that is"
            " not a number ('not read: …78' when its country was bad)"
        },
    )
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class ImportReportSchema(Schema):
    import_id = fields.String()
    dry_run = fields.Boolean()
    imported = fields.Integer(metadata={"description": "created + updated + unchanged"})
    created = fields.Integer()
    updated = fields.Integer(metadata={"description": "known customers the row changed"})
    unchanged = fields.Integer(metadata={"description": "known customers already as the row"})
    rejected = fields.List(fields.Nested(RejectedRowSchema))


class ExportQuery(Schema):
    tag = fields.String()
    opted_out = fields.Boolean()


@bp.post("/api/customers/import")
@endpoint(
    tag="customers",
    query=ImportQuery,
    response=ImportReportSchema,
    errors=(400, 401, 413, 415),
    uploads=(*CSV_TYPES, "multipart/form-data"),
    example={"text/csv": IMPORT_EXAMPLE, "multipart/form-data": {"file": IMPORT_EXAMPLE}},
)
def import_customers(query: dict):
    """Import customers and their consent from a CSV file (text/csv, or multipart `file`)."""
    request.max_content_length = customers_csv.MAX_IMPORT_BYTES
    report = customers_csv.import_customers(
        uploaded_file(),
        services().settings.default_region,
        actor(),
        utcnow(),
        salt=services().settings.suppression_salt,
        dry_run=query["dry_run"],
    )
    return jsonify(report.as_json())


@bp.get("/api/customers/export.csv")
@may_export
@endpoint(tag="customers", query=ExportQuery, errors=(400, 401), media_type="text/csv")
def export_customers(query: dict):
    """Every customer (?tag=, ?opted_out=) as CSV, in the import's columns and more
    (admins only: it is personal data)."""
    audit(actor(), "export_customers", None, {"filters": query}, utcnow())
    rows = customers_csv.export_customers(query.get("tag"), query.get("opted_out"))
    return Response(
        stream_with_context(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=customers.csv"},
    )


def uploaded_file() -> bytes:
    """The CSV: the whole body when it is text/csv, else the multipart form's `file`,
    sent as a file or, as the document's string field allows, as a plain form value."""
    if request.mimetype in CSV_TYPES:
        return request.get_data(cache=False)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None and "file" in request.form:
            return request.form["file"].encode()
        if upload is None:
            raise ApiError(
                400,
                "invalid_csv",
                "the form has no file field named `file`",
                {"file": ["missing"]},
            )
        return upload.read()
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the file as text/csv, or as the field `file` of a multipart/form-data form",
    )
