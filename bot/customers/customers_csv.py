"""Customers in and out as CSV: an import that checks every row before it writes any, then
writes each good row whole or not at all (bad rows come back with their reasons), and an
export streamed in batches so that a large customer base never sits in memory.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

import phonenumbers

from bot.core import languages, phones, search, zones
from bot.core.audit import audit
from bot.core.errors import UNSTORABLE, ApiError
from bot.core.models import ConsentEvent, Customer, db, write_transaction
from bot.core.rows import get_or_create_customer
from bot.policy import consent
from bot.policy.privacy import iso, suppressed_among

#: Why a row for an erased number is not imported (no number in it: the report is shown).
ERASED_ROW = "erased: this number's owner asked to be erased; it is not stored again"

#: What an import file may have (phone is required), in the order an export writes them.
COLUMNS = (
    "phone",
    "name",
    "language",
    "timezone",
    "tags",
    "country",
    "marketing_consent",
    "opted_out",
)
#: The export adds what only Dakiya knows; `marketing_opt_in` is the customer's current
#: marketing consent, which an import reads as `marketing_consent`.
EXPORT_COLUMNS = (
    "id",
    "phone",
    "name",
    "language",
    "timezone",
    "tags",
    "country",
    "opted_out",
    "marketing_opt_in",
    "created_at",
)
ALIASES = {"marketing_opt_in": "marketing_consent"}
#: Export-only columns an import accepts and ignores, so an export can be imported back.
READ_ONLY = frozenset({"id", "created_at"})
MAX_ROWS = 10_000
#: Bodies this large are accepted by the import alone (MAX_BODY_BYTES guards the rest).
MAX_IMPORT_BYTES = 8 * 1024 * 1024
#: Rows written per transaction: short write locks, and no 10,000 separate commits.
WRITE_BATCH = 500
EXPORT_BATCH = 1000
SOURCE = "csv_import"
#: Opt-outs an import may lift: the ones an import or an admin recorded. A customer's own
#: STOP (keyword, button, WhatsApp's preferences, the checkout box) is theirs to take back.
LIFTABLE_SOURCES = frozenset({SOURCE, "admin"})
TRUE = frozenset({"yes", "true", "1"})
FALSE = frozenset({"no", "false", "0"})
TAG_SEPARATOR = re.compile(r"[;|]")
#: A spreadsheet runs a cell starting with one of these as a formula; the export quotes
#: such text with a leading apostrophe and the import takes it off again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NAME_MAX = Customer.name.max_length
#: RFC 4180 (Excel's dialect): CRLF line ends. The csv module quotes a field holding the
#: delimiter, the quote or any character of the line terminator, so with CRLF a bare CR
#: or LF inside a name is always quoted and can never start a row of its own.
EXPORT_DIALECT = csv.excel


@dataclass(frozen=True)
class CustomerRow:
    """One data row of a file: the number in E.164 and only the fields the row gave
    (an empty cell leaves the customer's field as it is), or what is wrong with it."""

    row: int  # as a spreadsheet numbers it: the header is row 1
    raw_phone: str
    phone: str | None = None
    fields: dict = field(default_factory=dict)  # name, language, timezone, tags
    opted_out: bool | None = None
    marketing: bool | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def masked_phone(self) -> str | None:
        """The number as far as a report may show it: a read number masked as the logs
        mask it; one that is not a number (or was not read, for a bad country) is no
        E.164 to mask, so it is marked as such with the last two digits written, e.g.
        "invalid: …78" (two, as the mask shows, so a report gives away no more)."""
        if self.phone:
            return phones.mask(self.phone)
        digits = re.sub(r"\D", "", self.raw_phone)
        if not self.raw_phone:
            return None
        marker = "invalid" if "phone" in self.errors else "not read"
        return f"{marker}: …{digits[-2:]}" if len(digits) > 2 else marker

    def rejected(self, errors: dict[str, list[str]]) -> CustomerRow:
        merged = {name: list(messages) for name, messages in self.errors.items()}
        for name, messages in errors.items():
            merged.setdefault(name, []).extend(messages)
        return replace(self, errors=merged)


@dataclass
class ImportReport:
    import_id: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # a known customer the row would not change
    rejected: list[CustomerRow] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Rows accepted: created, updated or already as the row says."""
        return self.created + self.updated + self.unchanged

    def counts(self) -> dict:
        """What the audit log keeps: numbers only, never a phone number."""
        return {
            "rows": self.rows,
            "imported": self.imported,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
        }

    def as_json(self) -> dict:
        return {
            "import_id": self.import_id,
            "dry_run": self.dry_run,
            "imported": self.imported,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [
                {"row": row.row, "phone": row.masked_phone, "errors": row.errors}
                for row in sorted(self.rejected, key=lambda row: row.row)
            ],
        }


def import_customers(
    data: bytes,
    default_region: str,
    actor: str,
    now: datetime,
    *,
    salt: str,
    dry_run: bool = False,
) -> ImportReport:
    """Import a customers CSV file: every row is checked first, then each good row is
    written in its own savepoint with its consent changes; bad rows are reported.

    A dry run checks the same things (including the consent rules, which need the
    database) and writes nothing, not even the audit row.
    """
    rows = validate_rows(read_csv(data), default_region)
    report = ImportReport(import_id=str(uuid.uuid4()), dry_run=dry_run, rows=len(rows))
    report.rejected = [row for row in rows if row.errors]
    good = [row for row in rows if not row.errors]
    for start in range(0, len(good), WRITE_BATCH):
        batch = good[start : start + WRITE_BATCH]
        if dry_run:
            _import_batch(batch, report, now, salt)
        else:
            with write_transaction():
                _import_batch(batch, report, now, salt)
    if not dry_run:
        audit(actor, "import_customers", report.import_id, report.counts(), now)
    return report


def upsert_customers(
    items: list[dict], default_region: str, actor: str, now: datetime, *, salt: str
) -> ImportReport:
    """Create or update customers given as JSON items (a CRM's bulk upsert), checked by
    the import's rules; the good ones are written in one transaction, each row whole or
    not at all, and audited as `actor`. A row's number is its item's index, from 0."""
    rows = validate_rows(list(enumerate(map(as_csv_values, items))), default_region)
    report = ImportReport(import_id=str(uuid.uuid4()), dry_run=False, rows=len(rows))
    report.rejected = [row for row in rows if row.errors]
    with write_transaction():
        _import_batch([row for row in rows if not row.errors], report, now, salt)
    audit(actor, "upsert_customers", report.import_id, report.counts(), now)
    return report


def as_csv_values(item: dict) -> dict:
    """A JSON item in the CSV import's terms, so both are checked by the same rules."""
    values = {k: v for k, v in item.items() if v is not None and k != "tags"}
    if item.get("tags") is not None:
        values["tags"] = "|".join(item["tags"])
    return values


def read_csv(data: bytes) -> list[tuple[int, dict]]:
    """The file's data rows as (row number, {column: value}), blank rows left out.

    Refuses the whole file (ApiError) when it is not a customers file at all: not UTF-8,
    no header, unknown or repeated columns, no phone column, more than MAX_ROWS rows.
    Values beyond the header's columns are kept under the key None.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(f"the file is not UTF-8 text (byte {exc.start})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = _read_header(next(reader, None))
        rows = []
        for number, record in enumerate(reader, start=2):
            if not any(value.strip() for value in record):
                continue
            if len(rows) == MAX_ROWS:
                raise ApiError(
                    413,
                    "too_many_rows",
                    f"a file may have at most {MAX_ROWS} rows; split it and import each part",
                    {"file": [f"more than {MAX_ROWS} rows"]},
                )
            values = dict(zip(header, record, strict=False))
            if len(record) > len(header):
                values[None] = record[len(header) :]
            rows.append((number, values))
    except csv.Error as exc:
        raise _file_error(f"the file is not valid CSV (row {reader.line_num}: {exc})") from exc
    return rows


def _read_header(record: list[str] | None) -> list[str]:
    if record is None:
        raise _file_error("the file is empty; it needs a header row naming its columns")
    names = [ALIASES.get(name.strip().lower(), name.strip().lower()) for name in record]
    if not any(names):
        raise _file_error("the first row must be the header naming the columns")
    unknown = [
        name or f"(column {i} has no name)"
        for i, name in enumerate(names, start=1)
        if name not in COLUMNS and name not in READ_ONLY
    ]
    if unknown:
        raise ApiError(
            400,
            "unknown_columns",
            f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})",
            {"columns": [f"unknown column: {name}" for name in unknown]},
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ApiError(
            400,
            "duplicate_columns",
            f"columns given twice: {', '.join(repeated)}",
            {"columns": [f"given twice: {name}" for name in repeated]},
        )
    if "phone" not in names:
        raise ApiError(
            400,
            "missing_columns",
            "the header row must have a phone column",
            {"columns": ["missing column: phone"]},
        )
    return names


def _file_error(message: str) -> ApiError:
    return ApiError(400, "invalid_csv", message, {"file": [message]})


def validate_rows(rows: list[tuple[int, dict]], default_region: str) -> list[CustomerRow]:
    """Check every row; a number seen earlier in the file makes the later row an error."""
    checked = []
    first_row: dict[str, int] = {}
    for number, values in rows:
        row = validate_row(number, values, default_region)
        if row.phone in first_row:
            row = row.rejected({"phone": [f"duplicate of row {first_row[row.phone]}"]})
        elif row.phone:
            first_row[row.phone] = number
        checked.append(row)
    return checked


def validate_row(number: int, values: dict, default_region: str) -> CustomerRow:
    """One row checked on its own (pure): the number, each given field, the booleans.

    A cell with a character no database column can hold (NUL) fails its row, not the
    whole import: it is named and left unread.
    """
    errors: dict[str, list[str]] = {}
    unstorable = [
        name
        for name, value in values.items()
        if name is not None and isinstance(value, str) and UNSTORABLE.search(value)
    ]
    values = {name: value for name, value in values.items() if name not in unstorable}
    if values.get(None):
        errors["row"] = [f"{len(values[None])} more values than the header has columns"]
    raw_phone = (values.get("phone") or "").strip()
    country = (values.get("country") or "").strip().upper()
    if country and country not in phonenumbers.SUPPORTED_REGIONS:
        errors["country"] = ["not a known country code (ISO 3166-1 alpha-2, e.g. IN)"]
    phone = None
    if not raw_phone:
        errors["phone"] = ["required"]
    elif "country" not in errors:
        phone = phones.to_e164(raw_phone, country or default_region)
        if phone is None:
            errors["phone"] = ["not a valid phone number"]
    parsed = {}
    for name, parse in FIELD_PARSERS.items():
        value = (values.get(name) or "").strip()
        if not value:
            continue
        try:
            parsed[name] = parse(value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    for name in unstorable:
        errors[name] = ["contains a character that cannot be stored (NUL)"]
    return CustomerRow(
        row=number,
        raw_phone=raw_phone,
        phone=phone,
        fields={k: v for k, v in parsed.items() if k not in ("opted_out", "marketing_consent")},
        opted_out=parsed.get("opted_out"),
        marketing=parsed.get("marketing_consent"),
        errors=errors,
    )


def parse_name(value: str) -> str:
    value = _unquote_formula(value)
    if len(value) > NAME_MAX:
        raise ValueError(f"longer than {NAME_MAX} characters")
    return value


def parse_language(value: str) -> str:
    """A language Babel knows, as its BCP 47 tag ("hi_in" -> "hi-IN")."""
    try:
        return languages.parse_language(value)
    except ValueError:
        raise ValueError("not a known language (e.g. en, hi, pt-BR)") from None


def parse_timezone(value: str) -> str:
    """An IANA time zone, in its canonical spelling ("asia/kolkata" -> "Asia/Kolkata") and
    under its current name ("Asia/Calcutta" -> "Asia/Kolkata")."""
    zone = _time_zones().get(value.lower())
    if zone is None:
        raise ValueError("not a known time zone (e.g. Asia/Kolkata)")
    return zones.canonical(zone)


@cache
def _time_zones() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_tags(value: str) -> list[str]:
    """Tags separated by ";" or "|", each once, in the order given."""
    tags = (_unquote_formula(tag.strip()) for tag in TAG_SEPARATOR.split(value))
    return list(dict.fromkeys(tag for tag in tags if tag))


def parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError("must be yes, no, true, false, 1 or 0")


FIELD_PARSERS = {
    "name": parse_name,
    "language": parse_language,
    "timezone": parse_timezone,
    "tags": parse_tags,
    "opted_out": parse_bool,
    "marketing_consent": parse_bool,
}


def _import_batch(batch: list[CustomerRow], report: ImportReport, now: datetime, salt: str) -> None:
    found = Customer.select().where(Customer.phone.in_([row.phone for row in batch]))
    existing = {customer.phone: customer for customer in found}
    erased = suppressed_among([row.phone for row in batch], salt)
    for row in batch:
        if row.phone in erased:
            # The number's owner was erased: it is not imported again (README, Privacy).
            report.rejected.append(row.rejected({"phone": [ERASED_ROW]}))
            continue
        customer = existing.get(row.phone)
        conflicts = consent_conflicts(row, customer)
        if conflicts:
            report.rejected.append(row.rejected(conflicts))
            continue
        if customer is not None and not changes(row, customer):
            report.unchanged += 1  # nothing to write, not even updated_at
            continue
        if not report.dry_run:
            evidence = {"file_row": row.row, "import_id": report.import_id}
            with db.atomic():  # a savepoint: the row is written whole or not at all
                saved = save_row(row, customer, evidence, now, salt)
            if not saved:
                # Another request created this number between our read and our write.
                report.rejected.append(
                    row.rejected({"phone": ["changed during the import; import this row again"]})
                )
                continue
        if customer is None:
            report.created += 1
        else:
            report.updated += 1


def changes(row: CustomerRow, customer: Customer) -> bool:
    """Whether `row` would change `customer`: a field it gives, or a consent state."""
    if any(getattr(customer, name) != value for name, value in row.fields.items()):
        return True
    if row.opted_out is not None and row.opted_out != customer.opted_out:
        return True
    return row.marketing is not None and row.marketing != customer.marketing_opt_in


def consent_conflicts(row: CustomerRow, customer: Customer | None) -> dict[str, list[str]]:
    """An import records any opt-out, but lifts only one an import or an admin recorded."""
    if customer is None:
        return {}
    errors = {}
    if row.opted_out is False and customer.opted_out:
        source = _last_opt_out_source(customer, consent.ALL)
        if source not in LIFTABLE_SOURCES:
            errors["opted_out"] = [
                f"the customer opted out themselves ({source or 'unknown'}); "
                "only they can opt back in"
            ]
    if row.marketing is True and not customer.marketing_opt_in:
        source = _last_opt_out_source(customer, consent.MARKETING)
        if source is not None and source not in LIFTABLE_SOURCES:
            errors["marketing_consent"] = [
                f"the customer opted out of marketing themselves ({source}); "
                "only they can opt back in"
            ]
    return errors


def _last_opt_out_source(customer: Customer, category: str) -> str | None:
    event = (
        ConsentEvent.select(ConsentEvent.source)
        .where(
            (ConsentEvent.customer == customer)
            & (ConsentEvent.category == category)
            & (ConsentEvent.action == "opt_out")
        )
        .order_by(ConsentEvent.created_at.desc(), ConsentEvent.id.desc())
        .first()
    )
    return event.source if event else None


def save_row(
    row: CustomerRow, customer: Customer | None, evidence: dict, now: datetime, salt: str
) -> bool:
    """Create or update the customer with the row's fields, then its consent changes.

    False, writing nothing, when the number was to be new but a customer has it now: its
    consent was not checked against this row (`consent_conflicts`), so it is not touched.
    """
    fields = dict(row.fields)
    if fields.get("language"):
        fields["language_source"] = "admin"  # the shop's list says so: a choice (issue 15)
    if customer is None:
        customer, created = get_or_create_customer(row.phone, now, salt=salt, **fields)
        if not created:
            return False
    else:
        changed = {
            name: value for name, value in fields.items() if getattr(customer, name) != value
        }
        if changed:
            Customer.update(**changed, updated_at=now).where(Customer.id == customer.id).execute()
            for name, value in changed.items():
                setattr(customer, name, value)
    if row.opted_out is not None:
        record = consent.record_opt_out if row.opted_out else consent.record_opt_in
        record(customer, consent.ALL, SOURCE, evidence, now)
    if row.marketing is not None:
        record = consent.record_opt_in if row.marketing else consent.record_opt_out
        record(customer, consent.MARKETING, SOURCE, evidence, now)
    return True


def export_customers(tag: str | None, opted_out: bool | None) -> Iterator[str]:
    """The customers as CSV text, header first, read and written EXPORT_BATCH at a time."""
    yield _csv_line(EXPORT_COLUMNS)
    query = Customer.select()
    if tag is not None:
        # Narrows in SQL (case-insensitively); the exact match is made below.
        query = query.where(search.has_tag(Customer.tags, tag))
    if opted_out is not None:
        query = query.where(Customer.opted_out == opted_out)
    after = 0
    while True:
        batch = list(query.where(Customer.id > after).order_by(Customer.id).limit(EXPORT_BATCH))
        if not batch:
            return
        after = batch[-1].id
        out = io.StringIO()
        writer = csv.writer(out, EXPORT_DIALECT)
        for customer in batch:
            if tag is None or tag in customer.tags:
                writer.writerow(export_row(customer))
        yield out.getvalue()


def export_row(customer: Customer) -> list[str]:
    return [
        str(customer.id),
        customer.phone,
        _quote_formula(customer.name or ""),
        customer.language or "",
        customer.timezone or "",
        ";".join(_quote_formula(tag) for tag in customer.tags or []),
        _region(customer.phone),
        "yes" if customer.opted_out else "no",
        "yes" if customer.marketing_opt_in else "no",
        iso(customer.created_at) or "",
    ]


def _region(phone: str) -> str:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return ""
    return region if region in phonenumbers.SUPPORTED_REGIONS else ""


def _csv_line(values) -> str:
    out = io.StringIO()
    csv.writer(out, EXPORT_DIALECT).writerow(values)
    return out.getvalue()


def _quote_formula(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def _unquote_formula(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text
