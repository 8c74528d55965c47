"""Meta WhatsApp Cloud API: send through the Graph `/messages` endpoint and read its
webhooks (shared/PROVIDERS.md §1)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bot.core.phones import to_e164
from bot.core.signing import verify_hmac
from bot.delivery.providers.base import (
    DeliveryStatus,
    ErrorKind,
    Fact,
    InboundMessage,
    OutboundMessage,
    PreferenceUpdate,
    Pricing,
    ProviderError,
    SendResult,
    StatusUpdate,
    TemplateCall,
    Unhandled,
    WebhookUpdate,
)
from bot.delivery.providers.concurrent import HttpRequest
from bot.delivery.providers.http import (
    MAX_BUTTON_PAYLOAD,
    MAX_CALLBACK,
    MAX_CODE,
    MAX_NAME,
    MAX_TYPE,
    Answer,
    HttpProvider,
    NotActedOn,
    cut,
    ensure_object,
    header,
    json_body,
    optional,
    parse_retry_after,
    phone_number,
    provider_id,
    read_part,
    require,
    unhandled,
)
from bot.delivery.providers.meta_account import (
    ACCOUNT_FIELDS,
    CATEGORY_FIELD,
    account_news,
    category_notice,
)
from bot.delivery.providers.meta_identity import bsuid, identity_change, sender_identity

#: Graph error code -> how the sender reacts (PROVIDERS.md §1.11). Codes not listed fall
#: back on the HTTP status: 429 rate-limited, 5xx retry, other 4xx permanent.
META_ERROR_KINDS: dict[int, ErrorKind] = {
    **dict.fromkeys((1, 2, 4, 80007, 131000, 131016, 131057), ErrorKind.RETRY),
    **dict.fromkeys((130429, 131056), ErrorKind.RATE_LIMITED),
    **dict.fromkeys(
        # 131049 (per-user marketing cap) could be retried a day later; the foundation
        # treats it as final and leaves that policy to the sender.
        (0, 190, 3, 10, 100, 368, 470, 130472, 131008, 131009, 131026, 131030, 131031)
        + (131042, 131047, 131048, 131049, 131050, 131051)
        + (132000, 132001, 132005, 132007, 132012, 132015, 132016)
        # 2026 (§9.1, §9.3), none of which a retry of the same message mends: 131062 a
        # BSUID recipient for a message that needs a phone, 131063 marketing disabled on
        # the Cloud API, 131064 the messaging limit for template-classification
        # violations, 130497 a country the account may not message, 131037 a 555 number
        # without an approved display name, 137000 the recipient's identity key hash no
        # longer matches, 131045 / 133010 / 133016 the number's registration.
        + (131062, 131063, 131064, 130497, 131037, 137000, 131045, 133010, 133016),
        ErrorKind.PERMANENT,
    ),
    **dict.fromkeys(range(200, 300), ErrorKind.PERMANENT),  # missing permission (§1.11)
}

#: Codes that mean more than "failed", on send answers and receipts alike (§1.11): the
#: "re-engagement" errors (free-form text outside the 24-hour window), the pair rate
#: (slow down for this recipient only), the per-user marketing cap (a delay, not an
#: opt-out) and 131050, the user stopped marketing messages (an opt-out).
META_FACTS: dict[str, Fact] = {
    "131047": Fact.WINDOW_CLOSED,
    "470": Fact.WINDOW_CLOSED,
    "131056": Fact.PAIR_RATE_LIMITED,
    "131049": Fact.MARKETING_CAP,
    "131050": Fact.MARKETING_STOPPED,
    "131062": Fact.BSUID_NOT_SUPPORTED,
    "131063": Fact.MARKETING_DISABLED,
    "131064": Fact.ACCOUNT_LIMITED,
    "130497": Fact.COUNTRY_BLOCKED,
    "131037": Fact.NUMBER_NOT_READY,
    "131045": Fact.NUMBER_NOT_READY,
    "133010": Fact.NUMBER_NOT_READY,
    "133016": Fact.NUMBER_NOT_READY,
    "137000": Fact.RECIPIENT_CHANGED,
}

#: The longest pricing category, type or model kept (Meta's are short words).
MAX_PRICING_WORD = 40

#: The `origin` of a contact the customer shared by tapping a request-contact-info button.
CONTACT_REQUEST = "contact_request"

# Template button parameters differ by sub_type: a URL suffix is text, a quick reply
# carries the payload echoed back on the tap (§1.2, §1.8 b2).
_BUTTON_PARAMETER: dict[str, Callable[[str], dict]] = {
    "url": lambda value: {"type": "text", "text": value},
    "quick_reply": lambda value: {"type": "payload", "payload": value},
}


def meta_fact(code: str | None) -> Fact | None:
    """What a Graph error code means to Dakiya, if more than "failed"."""
    return META_FACTS.get(code) if code is not None else None


def meta_error_kind(code: int | None, http_status: int) -> ErrorKind:
    """Classify by the documented code first, by HTTP status only for unknown codes."""
    if code in META_ERROR_KINDS:
        return META_ERROR_KINDS[code]
    if http_status == 429:
        return ErrorKind.RATE_LIMITED
    return ErrorKind.RETRY if http_status >= 500 else ErrorKind.PERMANENT


#: The Marketing Messages API answers like /messages with the same codes (§9.3), but
#: 131009 there also means the template is not synced to it yet: Meta needs up to ten
#: minutes after a template is created or after seven days unused. Try again then.
MARKETING_API = "marketing_messages"
MARKETING_SYNC_CODE = 131009
MARKETING_SYNC_SECONDS = 600.0


def raise_for_response(response: Answer) -> None:
    """Turn a Graph error response into `ProviderError`; return quietly on 2xx.

    Logic keys off `error.code` and `error_data.details`, not titles (§1.3).
    """
    if response.ok:
        return
    body = json_body(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = response.text.strip()[:500] or response.reason or "no body"
        raise ProviderError(
            f"HTTP {response.status_code}: {text}",
            kind=meta_error_kind(None, response.status_code),
            code=f"http_{response.status_code}",
            retry_after=parse_retry_after(response),
        )
    code = error.get("code") if isinstance(error.get("code"), int) else None
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    stored_code = str(code) if code is not None else f"http_{response.status_code}"
    kind, retry_after = meta_error_kind(code, response.status_code), parse_retry_after(response)
    if code == MARKETING_SYNC_CODE and _posted_to(response) == MARKETING_API:
        kind, retry_after = ErrorKind.RETRY, max(retry_after or 0, MARKETING_SYNC_SECONDS)
    raise ProviderError(
        _join(error.get("message"), details) or f"HTTP {response.status_code}",
        kind=kind,
        code=stored_code,
        retry_after=retry_after,
        fact=meta_fact(stored_code),
    )


def _posted_to(response: Answer) -> str:
    """The Graph edge a response answers (`messages`, `marketing_messages`)."""
    return str(getattr(response, "url", "") or "").split("?")[0].rstrip("/").rpartition("/")[2]


class MetaProvider(HttpProvider):
    """WhatsApp Cloud API, called directly with a system-user access token."""

    name = "meta"
    fact_of = staticmethod(meta_fact)

    def request_for(self, message: OutboundMessage) -> HttpRequest:
        """POST /messages, or /marketing_messages for a marketing template the sender
        routes to the Marketing Messages API (same body, §9.3)."""
        s = self.settings
        edge = MARKETING_API if message.marketing_api and message.template else "messages"
        return HttpRequest(
            f"{s.meta_api_base_url}/{s.meta_api_version}/{s.meta_phone_number_id}/{edge}",
            {"Authorization": f"Bearer {s.meta_access_token}"},
            message_body(message),
        )

    def result_from(self, response: Answer) -> SendResult:
        raise_for_response(response)
        # A 200 means Meta accepted the request (§1.1); without an id we cannot match
        # the later status webhooks, but the customer may still get the message.
        body = json_body(response)
        messages = body.get("messages") if isinstance(body, dict) else None
        first = messages[0] if isinstance(messages, list) and messages else None
        message_id = first.get("id") if isinstance(first, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise ProviderError(
                f"Meta accepted the request but returned no message id: {response.text[:500]}",
                kind=ErrorKind.AMBIGUOUS,
            )
        return SendResult(provider_message_id=message_id)

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """`X-Hub-Signature-256: sha256=<hex>` of the raw body keyed with the app secret (§1.6)."""
        return verify_hmac(
            self.settings.secrets_for("META_APP_SECRET"),
            body,
            header(headers, "X-Hub-Signature-256"),
            prefix="sha256=",
        )

    def receipts_only(self, payload: Any) -> bool:
        """Every change of every entry is a `messages` change with statuses and no
        customer message (a glance at the keys: the body is parsed on a worker)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
            return False
        changes: list = []
        for entry in payload["entry"]:
            listed = entry.get("changes") if isinstance(entry, dict) else None
            changes += listed if isinstance(listed, list) and listed else [None]
        return bool(changes) and all(
            isinstance(change, dict)
            and change.get("field") == "messages"
            and isinstance(value := change.get("value"), dict)
            and "statuses" in value
            and "messages" not in value
            for change in changes
        )

    def parse_webhook(self, payload: Any) -> list[WebhookUpdate]:
        """Statuses and inbound messages from every `messages` change, marketing
        stop/resume from `user_preferences` changes, and account news (quality, template
        status, account updates) for the alerts, in payload order (§1.7, §1.10).

        Every entry, change and item is read on its own: one Dakiya cannot read or does
        not act on (another change field, a username user without a phone number, an
        error Meta reports instead of the message) becomes an `UnhandledItem` and the
        others are read as usual. Nothing Meta sends is required unless Meta promises it.
        """
        if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
            detail = "payload.object: not a WhatsApp Business Account webhook"
            return [unhandled(self.name, "payload", Unhandled.NOT_WHATSAPP, detail, payload)]
        entries = payload.get("entry")
        if not isinstance(entries, list):
            detail = f"payload.entry: expected array, got {type(entries).__name__}"
            return [unhandled(self.name, "payload", Unhandled.MALFORMED, detail, payload)]
        updates: list[WebhookUpdate] = []
        for e, entry in enumerate(entries):
            updates += _read(entry, "entry", f"entry[{e}]", _entry_updates)
        return updates


def _read(
    raw: Any, kind: str, where: str, read: Callable[[Any, str], list[WebhookUpdate]]
) -> list[WebhookUpdate]:
    return read_part(MetaProvider.name, kind, raw, where, read, _phone_of(raw))


def _entry_updates(entry: Any, where: str) -> list[WebhookUpdate]:
    entry = ensure_object(entry, where)
    updates: list[WebhookUpdate] = []
    for c, change in enumerate(require(entry, "changes", list, where)):
        at = f"{where}.changes[{c}]"
        field = change.get("field") if isinstance(change, dict) else None
        kind = f"change:{field}" if isinstance(field, str) else "change"
        updates += _read(change, kind, at, partial(_change_updates, entry=entry))
    return updates


def _change_updates(change: Any, where: str, *, entry: dict) -> list[WebhookUpdate]:
    change = ensure_object(change, where)
    field = require(change, "field", str, where)
    if field not in ACCOUNT_FIELDS | {"messages", "user_preferences", CATEGORY_FIELD}:
        detail = f"{where}.field: Dakiya does not act on {field[:60]!r}"
        raise NotActedOn(Unhandled.UNKNOWN_FIELD, detail)
    value = require(change, "value", dict, where)
    if field in ACCOUNT_FIELDS | {CATEGORY_FIELD}:
        at = _entry_time(entry, where.rpartition(".changes")[0])
        if field == CATEGORY_FIELD:
            return [category_notice(MetaProvider.name, value, f"{where}.value", at)]
        return [account_news(MetaProvider.name, field, value, at)]
    where += ".value"
    # Contacts only lend names and numbers to messages; an unreadable one lends nothing.
    listed = value.get("contacts")
    contacts = [c for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
    names = _profile_names(contacts)
    updates: list[WebhookUpdate] = []
    for key, kind, read in (
        ("user_preferences", "user_preference", _preference_update),
        ("statuses", "status", _status_update),
        ("messages", "message", partial(_inbound_message, contacts=contacts, names=names)),
        ("errors", "error", _value_error),
    ):
        found = value.get(key)
        if found is None:
            continue
        if not isinstance(found, list):
            detail = f"{where}.{key}: expected array, got {type(found).__name__}"
            updates.append(
                unhandled(MetaProvider.name, kind, Unhandled.MALFORMED, detail, found, where)
            )
            continue
        for i, item in enumerate(found):
            updates += _read(item, kind, f"{where}.{key}[{i}]", read)
    return updates


def _phone_of(raw: Any) -> str | None:
    """The customer's number an item names, if any (so an erasure finds the item)."""
    if not isinstance(raw, dict):
        return None
    for key in ("from", "wa_id", "recipient_id"):
        if phone := phone_number(raw.get(key)):
            return phone
    return None


def message_body(message: OutboundMessage) -> dict:
    """The `/messages` JSON for one outbound message, exactly as §1.2 documents it."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if message.to:
        body["to"] = message.to.removeprefix("+")  # the number when known (§9.1)
    elif message.recipient_user_id:
        body["recipient"] = message.recipient_user_id  # a username user's BSUID
    else:
        raise ProviderError("message has no recipient", kind=ErrorKind.PERMANENT)
    if message.callback_data:
        # Echoed on every status webhook for this message: how ambiguous sends reconcile.
        body["biz_opaque_callback_data"] = message.callback_data
    if message.template is not None:
        body["type"] = "template"
        body["template"] = _template(message.template)
    elif message.text is not None and message.request_contact:
        body["type"] = "interactive"
        body["interactive"] = {
            "type": "request_contact_info",
            "body": {"text": message.text},
            "action": {"name": "request_contact_info"},
        }
    elif message.text is not None and message.reply_buttons:
        body["type"] = "interactive"
        body["interactive"] = {
            "type": "button",
            "body": {"text": message.text},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": button_id, "title": title}}
                    for button_id, title in message.reply_buttons
                ]
            },
        }
    elif message.text is not None:
        body["type"] = "text"
        body["text"] = {"preview_url": False, "body": message.text}
    else:
        raise ProviderError("message has neither a template nor text", kind=ErrorKind.PERMANENT)
    return body


def _template(call: TemplateCall) -> dict:
    components: list[dict] = []
    for kind, values in (("header", call.header), ("body", call.body)):
        if values:
            params = [{"type": "text", "text": v} for v in values]
            components.append({"type": kind, "parameters": params})
    for button in call.buttons:
        parameter = _BUTTON_PARAMETER.get(button.sub_type)
        if parameter is None:
            raise ProviderError(
                f"unsupported template button sub_type {button.sub_type!r}",
                kind=ErrorKind.PERMANENT,
            )
        components.append(
            {
                "type": "button",
                "sub_type": button.sub_type,
                "index": str(button.index),  # Meta wants the index as a string (§1.2)
                "parameters": [parameter(button.value)],
            }
        )
    # `policy` only accepts "deterministic" (§1.2).
    template: dict[str, Any] = {
        "name": call.name,
        "language": {"policy": "deterministic", "code": call.language},
    }
    if components:
        template["components"] = components
    return template


def _status_update(status: Any, where: str) -> list[WebhookUpdate]:
    """A receipt, matched later by `id` (or our callback data); a username user's receipt
    names no phone number (`recipient_user_id` instead, §9.1), which it does not need."""
    status = ensure_object(status, where)
    errors = [e for e in optional(status, "errors", list, where) or [] if isinstance(e, dict)]
    error = errors[0] if errors else {}
    code = error.get("code") if isinstance(error.get("code"), int | str) else None
    callback = optional(status, "biz_opaque_callback_data", str, where)
    update = StatusUpdate(
        provider=MetaProvider.name,
        provider_message_id=provider_id(status, "id", where),
        status=_delivery_status(require(status, "status", str, where)),
        occurred_at=_unix_time(status, where),
        recipient=phone_number(status.get("recipient_id")),
        callback_data=cut(callback, MAX_CALLBACK),
        error_code=cut(str(code), MAX_CODE) if code is not None else None,
        error_text=_error_text(error) if error else None,
        raw=status,
        recipient_user_id=bsuid(status.get("recipient_user_id")),
        recipient_parent_user_id=bsuid(status.get("recipient_parent_user_id")),
        pricing=_pricing(status.get("pricing")),
    )
    return [update]


def _pricing(pricing: Any) -> Pricing | None:
    """The receipt's `pricing` (§9.2), when it says whether it is billable and as what;
    otherwise none (the raw receipt keeps whatever it was). `type` comes from v24.0 on."""
    if not isinstance(pricing, dict):
        return None
    billable, category = pricing.get("billable"), pricing.get("category")
    if not isinstance(billable, bool) or not isinstance(category, str) or not category:
        return None
    kind, model = pricing.get("type"), pricing.get("pricing_model")
    return Pricing(
        billable=billable,
        category=category.lower()[:MAX_PRICING_WORD],
        type=kind.lower()[:MAX_PRICING_WORD] if isinstance(kind, str) and kind else None,
        model=model.upper()[:16] if isinstance(model, str) and model else None,
    )


def _preference_update(pref: Any, where: str) -> list[WebhookUpdate]:
    """Marketing stop/resume; other values (Meta documents `signup`, §9.2) are not an
    opt-out or an opt-in, so they are kept raw."""
    pref = ensure_object(pref, where)
    value = require(pref, "value", str, where)
    if value not in ("stop", "resume"):
        raise NotActedOn(
            Unhandled.UNKNOWN_VALUE,
            f"{where}.value: {value[:40]!r} is neither stop nor resume (not a consent change)",
        )
    phone = phone_number(pref.get("wa_id"))
    user_id = bsuid(pref.get("user_id"))
    if phone is None and user_id is None:
        raise ValueError(f"{where}.wa_id: no phone number and no user_id")
    update = PreferenceUpdate(
        provider=MetaProvider.name,
        phone=phone,
        user_id=user_id,
        category="marketing",
        opted_in=value == "resume",
        occurred_at=_unix_time(pref, where),
        detail=optional(pref, "detail", str, where),
    )
    return [update]


def _inbound_message(
    msg: Any, where: str, *, contacts: list[dict], names: dict[str, str]
) -> list[WebhookUpdate]:
    """A customer's message. A username user's may carry no `from` (§9.1): their
    number is then taken from the contact with the same BSUID when Meta gives it, and a
    message with a BSUID alone is from a customer known by that BSUID. A system message
    saying the customer's number or BSUID changed is an `IdentityChange`."""
    msg = ensure_object(msg, where)
    message_id = provider_id(msg, "id", where)
    kind = require(msg, "type", str, where)
    if kind == "system":
        return [identity_change(msg, where, _unix_time(msg, where))]
    sender = phone_number(msg.get("from")) or _contact_phone(msg, contacts)
    identity = sender_identity(msg, contacts)
    if sender is None and identity.user_id is None:
        raise ValueError(f"{where}.from: no phone number and no from_user_id")
    text, button_payload = _reply_content(msg, kind, where)
    inbound = InboundMessage(
        provider=MetaProvider.name,
        provider_message_id=message_id,
        from_phone=sender,
        type=kind[:MAX_TYPE],
        occurred_at=_unix_time(msg, where),
        text=text,
        button_payload=cut(button_payload, MAX_BUTTON_PAYLOAD),
        profile_name=cut(
            names.get((sender or "").removeprefix("+")) or names.get(identity.user_id or ""),
            MAX_NAME,
        ),
        raw=msg,
        from_user_id=identity.user_id,
        parent_user_id=identity.parent_user_id,
        username=identity.username,
        shared_phone=_requested_phone(msg) if kind == "contacts" else None,
    )
    errors = msg.get("errors")
    if not errors:
        return [inbound]
    # Meta could not pass the content on (e.g. 131051 unsupported type, or 131000 with an
    # `interactive` message that has no `interactive` object, §9.2): the customer did
    # write (their window opens), and what Meta says went wrong is kept.
    detail = f"{where}.errors: Meta reports {_errors_text(errors)}"
    problem = unhandled(
        MetaProvider.name, "message", Unhandled.PROVIDER_ERROR, detail, msg, where, sender
    )
    return [inbound, problem]


def _value_error(error: Any, where: str) -> list[WebhookUpdate]:
    """A system-level error Meta reports for the number (`value.errors[]`, §1.9)."""
    detail = f"{where}: Meta reports {_errors_text([error])}"
    raise NotActedOn(Unhandled.PROVIDER_ERROR, detail)


def _requested_phone(msg: dict) -> str | None:
    """The number a customer shared by tapping our request-contact-info button: the
    first phone of the first shared contact when its `origin` (on the contact, or on the
    message as some payloads put it) is `contact_request`. A card shared any other way
    (origin `other`, or none) is anyone's, never the sender's."""
    shared = msg.get("contacts")
    card = shared[0] if isinstance(shared, list) and shared else None
    if not isinstance(card, dict) or (card.get("origin") or msg.get("origin")) != CONTACT_REQUEST:
        return None
    listed = card.get("phones")
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict):
            # `wa_id` is digits; `phone` is as the customer's phone book writes it.
            written = entry.get("phone") if isinstance(entry.get("phone"), str) else None
            if found := phone_number(entry.get("wa_id")) or to_e164(written, None):
                return found
    return None


def _contact_phone(msg: dict, contacts: list[dict]) -> str | None:
    """The number of the contact whose BSUID (`user_id`) sent `msg`, when Meta gives one."""
    user_id = msg.get("from_user_id")
    if not isinstance(user_id, str) or not user_id:
        return None
    for contact in contacts:
        if contact.get("user_id") == user_id:
            return phone_number(contact.get("wa_id"))
    return None


def _errors_text(errors: object) -> str:
    """ "131051 Message type unknown; ..." from Meta's error objects, for a person."""
    parts = []
    for error in errors if isinstance(errors, list) else [errors]:
        if isinstance(error, dict):
            code = error.get("code")
            text = _error_text(error) or ""
            parts.append(f"{code if isinstance(code, int | str) else '?'} {text}".strip())
    return "; ".join(parts) or "an error"


def _reply_content(msg: dict, kind: str, where: str) -> tuple[str | None, str | None]:
    """(visible text, button payload) for the inbound types we act on (§1.8). Only the
    object named by `type` is read, and only when Meta sent it (an errored message may
    lack it)."""
    if kind == "text":
        return require(require(msg, "text", dict, where), "body", str, f"{where}.text"), None
    if kind == "button":  # quick reply on a template: payload is the one we set (§1.8 b2)
        button = optional(msg, "button", dict, where) or {}
        return (
            optional(button, "text", str, f"{where}.button"),
            optional(button, "payload", str, f"{where}.button"),
        )
    if kind == "interactive":  # reply button or list pick on a session message (§1.8 b1)
        interactive = optional(msg, "interactive", dict, where) or {}
        reply_type = optional(interactive, "type", str, f"{where}.interactive")
        if reply_type in ("button_reply", "list_reply"):
            reply = optional(interactive, reply_type, dict, f"{where}.interactive") or {}
            inner = f"{where}.interactive.{reply_type}"
            return optional(reply, "title", str, inner), optional(reply, "id", str, inner)
    return None, None


def _profile_names(contacts: list[dict]) -> dict[str, str]:
    """Profile names by `wa_id` and by BSUID (`user_id`); unreadable contacts add none."""
    names = {}
    for contact in contacts:
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        if not isinstance(name, str) or not name:
            continue
        for key in ("wa_id", "user_id"):
            if isinstance(contact.get(key), str) and contact[key]:
                names[contact[key]] = name
    return names


def _delivery_status(value: str) -> DeliveryStatus:
    # New statuses (e.g. `played` for voice) must not break parsing (ANCHORS.md, pywa).
    try:
        return DeliveryStatus(value)
    except ValueError:
        return DeliveryStatus.UNKNOWN


def _unix_time(obj: dict, where: str) -> datetime:
    """Meta timestamps are unix seconds as a string; we store naive UTC (now, when an
    item leaves it out)."""
    value = optional(obj, "timestamp", (str, int), where)
    if value is None:
        return datetime.now(UTC).replace(tzinfo=None)
    try:
        return datetime.fromtimestamp(int(value), tz=UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"{where}.timestamp: not unix seconds: {str(value)[:40]!r}") from exc


def _entry_time(entry: dict, where: str) -> datetime:
    """When Meta triggered an entry (`time`, unix seconds); now if it left it out."""
    if entry.get("time") is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return _unix_time({"timestamp": entry["time"]}, f"{where}.time")


def _error_text(error: dict) -> str | None:
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    return _join(error.get("message") or error.get("title"), details)


def _join(message: object, details: object) -> str | None:
    """`message: details`, dropping either part when missing or when details repeat it."""
    parts = [p for p in (message, details) if isinstance(p, str) and p]
    if len(parts) == 2 and parts[1] in parts[0]:
        parts.pop()
    return ": ".join(parts) or None
