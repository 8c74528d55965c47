"""Admin API routes: customers, consent, messages, orders, the template map, the policy
settings and the conversations handed to a person. Every change is audited."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import jsonify
from peewee import IntegrityError

from bot.campaigns import experiments
from bot.core import phones, runtime, search
from bot.core.audit import audit
from bot.core.config import ConfigError
from bot.core.errors import ApiError
from bot.core.models import (
    ConsentEvent,
    Customer,
    EventKind,
    InboundMessage,
    Message,
    Order,
    StatusEvent,
    db,
    utcnow,
    write_transaction,
)
from bot.customers import customers
from bot.delivery import release, sending
from bot.extensions import services
from bot.policy import consent
from bot.web.admin import bp
from bot.web.admin import schemas as s
from bot.web.auth import actor
from bot.web.contract import endpoint, page

RECENT = 20
#: `<event>` of the template routes: an order event kind, else the route is a 404.
EVENT = f"<any({', '.join(EventKind)}):event>"


def dump(schema: type, obj, many: bool = False):
    return schema().dump(obj, many=many)


def get_or_404(model, row_id: int):
    row = model.get_or_none(model.id == row_id)
    if row is None:
        raise ApiError(404, "not_found", f"no {model.__name__.lower()} {row_id}")
    return row


def where_equal(rows, query: dict, **columns):
    """`rows` narrowed to `column == query[name]` for each filter the query gives."""
    for name, column in columns.items():
        if name in query:
            rows = rows.where(column == query[name])
    return rows


def utc_naive(moment: datetime) -> datetime:
    """A query's date-time as the naive UTC the database stores (naive input is UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def customer_json(customer: Customer) -> dict:
    return dump(s.CustomerOut, customer)


def audited(customer: Customer) -> dict:
    """A customer as the audit log keeps it: the number masked, since the log outlives
    an erasure."""
    return {**customer_json(customer), "phone": phones.mask(customer.phone)}


# --- customers -----------------------------------------------------------------------


@bp.get("/api/customers")
@endpoint(tag="customers", query=s.CustomerQuery, response=s.CustomerPage)
def list_customers(query: dict):
    """Find customers by phone or name, tag, consent or hand-over state."""
    rows = Customer.select()
    if "q" in query:
        region = services().settings.default_region
        rows = rows.where(search.phone_or_name(Customer.phone, Customer.name, query["q"], region))
    if "tag" in query:
        rows = rows.where(search.has_tag(Customer.tags, query["tag"]))
    if "opted_out" in query:
        rows = rows.where(Customer.opted_out == query["opted_out"])
    if "flagged" in query:
        rows = rows.where(Customer.needs_agent_since.is_null(not query["flagged"]))
    items, next_after = page(rows, query["limit"], query["after"], Customer.id)
    return jsonify(items=dump(s.CustomerOut, items, many=True), next_after=next_after)


@bp.post("/api/customers")
@endpoint(
    tag="customers",
    body=s.CustomerCreate,
    response=s.CustomerOut,
    status=201,
    errors=(409,),
    example={
        "phone": "98765 43210",
        "country": "IN",
        "name": "Ravi Kumar",
        "language": "hi",
        "timezone": "Asia/Kolkata",
        "tags": ["wholesale"],
    },
)
def create_customer(body: dict):
    """Add a customer (consent is changed through the consent endpoint)."""
    now = utcnow()
    with write_transaction():
        settings = services().settings
        customer = customers.create_customer(
            body, settings.default_region, now, salt=settings.suppression_salt
        )
        audit(actor(), "create_customer", str(customer.id), {"after": audited(customer)}, now)
    return jsonify(customer_json(customer)), 201


@bp.get("/api/customers/<int:customer_id>")
@endpoint(tag="customers", response=s.CustomerOut, errors=(404,))
def show_customer(customer_id: int):
    """One customer, with their consent state."""
    return jsonify(customer_json(get_or_404(Customer, customer_id)))


@bp.patch("/api/customers/<int:customer_id>")
@endpoint(
    tag="customers",
    body=s.CustomerUpdate,
    response=s.CustomerOut,
    errors=(404, 409),
    example={"name": "Asha Rao", "language": "en-IN", "tags": ["vip", "repeat"]},
)
def update_customer(customer_id: int, body: dict):
    """Change a customer's name, language, time zone, tags or phone number.

    A new number is read like a new customer's (E.164, or national in `country` or
    DEFAULT_REGION); 409 names the customer who has it. Consent, orders and history stay
    with the customer; messages still waiting go to the new number; the service window
    closes. The audit log keeps both numbers masked."""
    now = utcnow()
    fields = dict(body)
    country = fields.pop("country", None)
    with write_transaction():
        customer = get_or_404(Customer, customer_id)
        before = audited(customer)
        if "phone" in fields:
            settings = services().settings
            region = country or settings.default_region
            customers.change_phone(
                customer, fields.pop("phone"), region, now, salt=settings.suppression_salt
            )
        for name, value in fields.items():
            setattr(customer, name, value)
        if "language" in fields:
            customer.language_source = "admin" if fields["language"] else None
        customer.updated_at = now
        try:
            with db.atomic():  # a savepoint: a number taken meanwhile is a 409, not a 500
                customer.save()
        except IntegrityError:
            raise customers.exists(Customer.get(Customer.phone == customer.phone)) from None
        audit(
            actor(),
            "update_customer",
            str(customer_id),
            {"before": before, "after": audited(customer)},
            now,
        )
    return jsonify(customer_json(customer))


@bp.get("/api/customers/<int:customer_id>/consent")
@endpoint(tag="customers", response=s.ConsentList, errors=(404,))
def consent_history(customer_id: int):
    """The customer's consent ledger, oldest first."""
    customer = get_or_404(Customer, customer_id)
    events = customer.consent_events.order_by(ConsentEvent.created_at, ConsentEvent.id)
    return jsonify(items=dump(s.ConsentOut, events, many=True))


@bp.post("/api/customers/<int:customer_id>/consent")
@endpoint(
    tag="customers",
    body=s.ConsentChange,
    response=s.CustomerOut,
    errors=(404,),
    example={"category": "marketing", "action": "opt_in", "note": "asked at the shop counter"},
)
def change_consent(customer_id: int, body: dict):
    """Record an opt-in or opt-out on the customer's behalf (source: admin)."""
    now = utcnow()
    with write_transaction():
        customer = get_or_404(Customer, customer_id)
        before = customer_json(customer)
        evidence = {"admin": actor(), "note": body.get("note")}
        record = consent.record_opt_in if body["action"] == "opt_in" else consent.record_opt_out
        record(customer, body["category"], "admin", evidence, now)
        after = customer_json(Customer.get_by_id(customer_id))
        audit(
            actor(),
            "change_consent",
            str(customer_id),
            {"before": before, "after": after, **body},
            now,
        )
    return jsonify(after)


# --- messages ------------------------------------------------------------------------


@bp.get("/api/messages")
@endpoint(tag="messages", query=s.MessageQuery, response=s.MessagePage)
def list_messages(query: dict):
    """Messages by state, reason code, template, customer and time."""
    rows = where_equal(
        Message.select(),
        query,
        state=Message.state,
        reason=Message.reason,
        template=Message.template_name,
        customer_id=Message.customer,
    )
    if "since" in query:
        rows = rows.where(Message.created_at >= utc_naive(query["since"]))
    if "until" in query:
        rows = rows.where(Message.created_at < utc_naive(query["until"]))
    items, next_after = page(rows, query["limit"], query["after"], Message.id)
    return jsonify(items=dump(s.MessageOut, items, many=True), next_after=next_after)


@bp.get("/api/messages/<int:message_id>")
@endpoint(tag="messages", response=s.MessageDetail, errors=(404,))
def show_message(message_id: int):
    """One message with its state, reason code, provider error and delivery receipts."""
    message = get_or_404(Message, message_id)
    body = dump(s.MessageOut, message)
    receipts = message.status_events.order_by(StatusEvent.occurred_at)
    body["status_events"] = dump(s.StatusEventOut, receipts, many=True)
    return jsonify(body)


@bp.post("/api/messages/<int:message_id>/cancel")
@endpoint(tag="messages", response=s.MessageOut, errors=(404, 409))
def cancel_message(message_id: int):
    """Stop a message that has not been sent yet (queued or deferred)."""
    get_or_404(Message, message_id)
    if not sending.cancel_message(message_id, actor(), utcnow()):
        raise ApiError(409, "not_cancellable", "only queued or deferred messages can be cancelled")
    return jsonify(dump(s.MessageOut, Message.get_by_id(message_id)))


@bp.post("/api/messages/<int:message_id>/retry")
@endpoint(
    tag="messages",
    response=s.MessageOut,
    status=202,
    errors=(404, 409),
    path_examples={"message_id": 2},
)
def retry_message(message_id: int):
    """Send a failed or dead-lettered message again."""
    get_or_404(Message, message_id)
    if not sending.retry_failed_message(message_id, services().queues, utcnow()):
        raise ApiError(409, "not_failed", f"message {message_id} is not a failed message")
    audit(actor(), "retry_message", str(message_id), {"after": "queued"}, utcnow())
    return jsonify(dump(s.MessageOut, Message.get_by_id(message_id))), 202


@bp.post("/api/messages/<int:message_id>/send-now")
@endpoint(
    tag="messages",
    response=s.MessageOut,
    status=202,
    errors=(404, 409),
    path_examples={"message_id": 3},
)
def send_message_now(message_id: int):
    """Make a waiting (deferred or queued) message due now. The sending policy still
    decides it when it is picked up, and may defer it again (quiet hours that still
    apply, a cap still reached)."""
    get_or_404(Message, message_id)
    if not release.send_now(message_id, actor(), services().queues, utcnow()):
        raise ApiError(409, "not_waiting", "only queued or deferred messages can be sent now")
    return jsonify(dump(s.MessageOut, Message.get_by_id(message_id))), 202


# --- orders --------------------------------------------------------------------------


@bp.get("/api/orders")
@endpoint(tag="orders", query=s.OrderQuery, response=s.OrderPage)
def list_orders(query: dict):
    """Look orders up by source, the shop's id or number, or customer."""
    rows = where_equal(
        Order.select(),
        query,
        source=Order.source,
        external_id=Order.external_id,
        number=Order.number,
        customer_id=Order.customer,
    )
    items, next_after = page(rows, query["limit"], query["after"], Order.id)
    return jsonify(items=dump(s.OrderOut, items, many=True), next_after=next_after)


@bp.get("/api/orders/<int:order_id>")
@endpoint(tag="orders", response=s.OrderDetail, errors=(404,))
def show_order(order_id: int):
    """One order with its events and messages."""
    order = get_or_404(Order, order_id)
    body = dump(s.OrderOut, order)
    body["events"] = dump(s.OrderEventOut, order.events.order_by(order.events.model.id), many=True)
    body["messages"] = dump(s.MessageOut, order.messages.order_by(Message.id), many=True)
    write_backs = order.write_backs.order_by(order.write_backs.model.id)
    body["write_backs"] = dump(s.WriteBackOut, write_backs, many=True)
    return jsonify(body)


# --- templates and settings ----------------------------------------------------------


@bp.get("/api/templates")
@endpoint(tag="settings", response=s.TemplateList)
def list_templates():
    """The template each order event sends, with its languages and parameters, and where
    the mapping comes from: the map file, or an admin's override."""
    return _template_list()


def _template_list(ended: list[dict] | None = None):
    data, sources = runtime.template_sources(services().settings)
    said = runtime.meta_category_rows()
    items = [
        {
            "event": kind,
            "enabled": True,
            **entry,
            "source": sources[kind],
            "meta_categories": said.get(entry.get("template"), []),
        }
        for kind, entry in (data.get("events") or {}).items()
    ]
    return jsonify(
        items=dump(s.TemplateMappingOut, items, many=True),
        fallbacks=data.get("fallbacks") or {},
        ended_experiments=ended or [],
    )


@bp.put(f"/api/templates/{EVENT}")
@endpoint(
    tag="settings",
    body=s.TemplateMapping,
    response=s.TemplateList,
    errors=(404,),
    example={
        "template": "order_shipped_v2",
        "languages": ["en", "hi"],
        "category": "utility",
        "body": ["customer_name", "order_number", "tracking_url"],
        "buttons": [{"index": 0, "sub_type": "url", "value": "tracking_number"}],
    },
    path_examples={"event": EventKind.SHIPPED.value},
)
def edit_template(event: str, body: dict):
    """Change which template an order event sends (takes effect within seconds), as an
    override of the map file's entry for this event only. The edit wins: an experiment
    live on the event (running, or rolled out) is stopped, and named in
    `ended_experiments`."""
    svc, now, who = services(), utcnow(), actor()
    with write_transaction():
        try:
            runtime.check_template(svc.settings, event, body)
        except ConfigError as exc:
            raise ApiError(400, "invalid_body", str(exc), {"body": [str(exc)]}) from exc
        before = runtime.save_template_override(event, body, who)
        audit(who, "edit_template", event, {"before": before, "after": body}, now)
        ended = experiments.end_live(event, who, now, reason="template_edit")
    svc.refresh()
    return _template_list(ended)


@bp.delete(f"/api/templates/{EVENT}")
@endpoint(
    tag="settings",
    response=s.TemplateList,
    errors=(404,),
    path_examples={"event": EventKind.SHIPPED.value},
)
def reset_template(event: str):
    """Delete the event's override: it sends the map file's entry again (and follows
    later edits of the file). An experiment live on the event is stopped, as on an edit.
    404 when the event has no override."""
    svc, now, who = services(), utcnow(), actor()
    with write_transaction():
        before = runtime.delete_template_override(event)
        if before is None:
            raise ApiError(404, "not_found", f"{event} has no override; it follows the map file")
        audit(who, "reset_template", event, {"before": before, "after": None}, now)
        ended = experiments.end_live(event, who, now, reason="template_reset")
    svc.refresh()
    return _template_list(ended)


@bp.get("/api/settings")
@endpoint(tag="settings", response=s.PolicySettingsOut)
def show_settings():
    """The sending policy's settings in force, and which ones an admin changed."""
    svc = services()
    current = svc.current_settings()
    values = {name: getattr(current, name) for name in runtime.OVERRIDABLE}
    overridden = sorted(runtime.overrides())
    return jsonify(dump(s.PolicySettingsOut, {**values, "overridden": overridden}))


@bp.patch("/api/settings")
@endpoint(
    tag="settings",
    body=s.PolicySettings,
    response=s.PolicySettingsOut,
    example={"quiet_hours_marketing": "21:00-09:00", "marketing_daily_cap": 1},
)
def change_settings(body: dict):
    """Change quiet hours, caps, the tier, the minimum gap or the send rate at run time;
    `null` clears a change (the environment's value is in force again). Messages deferred
    by a setting that changed (quiet hours, a cap, the minimum gap, the tier) are decided
    again within seconds."""
    svc, now = services(), utcnow()
    current = runtime.current_settings(svc.settings)  # as stored, not this process's copy
    try:
        after = runtime.settings_after(svc.settings, body)
    except ConfigError as exc:
        raise ApiError(400, "invalid_body", str(exc), {name: [str(exc)] for name in body}) from exc
    before = {name: getattr(current, name) for name in body}
    changed = [name for name in body if getattr(after, name) != before[name]]
    with write_transaction():
        runtime.save_overrides(body, actor())
        released = release.release_deferred(changed, now)
        details = {"before": before, "after": body, "released": released.count}
        audit(actor(), "change_settings", "policy", details, now)
    svc.refresh()
    release.wake(svc.queues, released)
    return show_settings.__wrapped__()


# --- conversations -------------------------------------------------------------------


@bp.get("/api/conversations")
@endpoint(tag="conversations", query=s.ConversationQuery, response=s.ConversationList)
def list_conversations(query: dict):
    """Conversations flagged for a person (the default), with their recent messages."""
    rows = Customer.select()
    if query["flagged"]:
        rows = rows.where(Customer.needs_agent_since.is_null(False))
    items, next_after = page(rows, query["limit"], query["after"], Customer.id)
    return jsonify(conversations=[conversation_json(c) for c in items], next_after=next_after)


@bp.post("/api/conversations/<int:customer_id>/release")
@endpoint(tag="conversations", response=s.ConversationOut, errors=(404,))
def release_conversation(customer_id: int):
    """Hand the conversation back to the automatic answers."""
    now = utcnow()
    with write_transaction():
        get_or_404(Customer, customer_id)
        Customer.update(needs_agent_since=None, updated_at=now).where(
            Customer.id == customer_id
        ).execute()
        audit(
            actor(), "release_conversation", str(customer_id), {"after": "automatic answers"}, now
        )
    return jsonify(conversation_json(Customer.get_by_id(customer_id)))


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def conversation_json(customer: Customer) -> dict:
    inbound = [
        {"direction": "in", "at": _iso(m.occurred_at), "text": m.text, "intent": m.intent}
        for m in customer.inbound.order_by(InboundMessage.occurred_at.desc()).limit(RECENT)
    ]
    outbound = [
        {
            "direction": "out",
            "at": _iso(m.created_at),
            "text": m.text or m.template_name,
            "state": m.state,
        }
        for m in customer.messages.order_by(Message.created_at.desc()).limit(RECENT)
    ]
    messages = sorted(inbound + outbound, key=lambda m: m["at"] or "", reverse=True)[:RECENT]
    return {
        "customer_id": customer.id,
        "phone": customer.phone,
        "name": customer.name,
        "language": customer.language,
        "needs_agent_since": _iso(customer.needs_agent_since),
        "last_inbound_at": _iso(customer.last_inbound_at),
        "messages": messages,
    }
