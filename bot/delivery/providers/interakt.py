"""Interakt (a Meta BSP): send through its public message API and read its webhooks
(shared/PROVIDERS.md §2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.core.signing import verify_hmac
from bot.delivery.providers.base import (
    DeliveryStatus,
    ErrorKind,
    InboundMessage,
    OutboundMessage,
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
from bot.delivery.providers.meta import meta_fact

#: Interakt exposes no reliable error codes on the send call, so the HTTP status is the
#: classifier (§2.4, §2.6). Other 4xx are permanent, other 5xx are retried.
INTERAKT_STATUS_KINDS: dict[int, ErrorKind] = {429: ErrorKind.RATE_LIMITED}

#: Webhook types that are delivery receipts: API sends and campaign sends (§2.5).
_STATUS_TYPE = re.compile(r"message_(?:api|campaign)_(sent|delivered|read|failed)")

#: Which `data.message` timestamp says when each status happened (§2.5 samples); the
#: rest fall back to the webhook's top-level `timestamp`.
_STATUS_TIME_FIELD = {
    DeliveryStatus.DELIVERED: "delivered_at_utc",
    DeliveryStatus.READ: "seen_at_utc",
}


def interakt_error_kind(http_status: int) -> ErrorKind:
    if http_status in INTERAKT_STATUS_KINDS:
        return INTERAKT_STATUS_KINDS[http_status]
    return ErrorKind.RETRY if http_status >= 500 else ErrorKind.PERMANENT


def raise_for_response(response: Answer) -> None:
    """Turn a non-2xx Interakt answer into `ProviderError` carrying its `message` text."""
    if response.ok:
        return
    body = json_body(response)
    message = body.get("message") if isinstance(body, dict) else None
    text = message if isinstance(message, str) and message else response.text.strip()[:500]
    raise ProviderError(
        text or f"HTTP {response.status_code}",
        kind=interakt_error_kind(response.status_code),
        code=f"http_{response.status_code}",
        retry_after=parse_retry_after(response),
    )


class InteraktProvider(HttpProvider):
    """Interakt public API, authenticated with the dashboard's ready-made Basic key."""

    name = "interakt"
    sends_to_bsuid = False  # its send API takes a phone number only (§2.2)
    #: A receipt's `channel_error_code` is the WhatsApp code Interakt passes on (§2.5),
    #: read with Meta's table; its send answers carry only an HTTP status: no fact.
    fact_of = staticmethod(meta_fact)

    def request_for(self, message: OutboundMessage) -> HttpRequest:
        return HttpRequest(
            f"{self.settings.interakt_api_base_url}/v1/public/message/",
            # The dashboard key is already base64("<raw>:"), so it goes out verbatim (§2.1).
            {"Authorization": f"Basic {self.settings.interakt_api_key}"},
            message_body(message),
        )

    def result_from(self, response: Answer) -> SendResult:
        raise_for_response(response)
        body = json_body(response)
        if not isinstance(body, dict):
            raise ProviderError(
                f"Interakt answered {response.status_code} without JSON: {response.text[:500]}",
                kind=ErrorKind.AMBIGUOUS,
            )
        text = body.get("message") if isinstance(body.get("message"), str) else None
        if body.get("result") is not True:
            raise ProviderError(text or "Interakt refused the message", kind=ErrorKind.PERMANENT)
        message_id = body.get("id")
        if not isinstance(message_id, str) or not message_id:
            # Created, but untrackable by id: reconcile by callbackData, never resend.
            raise ProviderError(
                text or "Interakt accepted the message but returned no id",
                kind=ErrorKind.AMBIGUOUS,
            )
        return SendResult(provider_message_id=message_id)

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """`Interakt-Signature: sha256=<hex>` over the raw body (§2.5); some senders
        use `X-Interakt-Signature`, so both are accepted."""
        signature = header(headers, "Interakt-Signature") or header(headers, "X-Interakt-Signature")
        secrets = self.settings.secrets_for("INTERAKT_WEBHOOK_SECRET")
        return verify_hmac(secrets, body, signature, prefix="sha256=")

    def receipts_only(self, payload: Any) -> bool:
        """A `message_api_*` or `message_campaign_*` status, one per webhook."""
        kind = payload.get("type") if isinstance(payload, dict) else None
        return isinstance(kind, str) and _STATUS_TYPE.fullmatch(kind) is not None

    def parse_webhook(self, payload: Any) -> list[WebhookUpdate]:
        """One update per webhook: a delivery status or an inbound message. A type
        Dakiya does not act on (clicks, tests, account alerts) or a body it cannot read
        becomes an `UnhandledItem`, kept raw: Interakt never sends it again."""
        if not isinstance(payload, dict):
            detail = f"payload: expected a JSON object, got {type(payload).__name__}"
            return [unhandled(self.name, "payload", Unhandled.NOT_WHATSAPP, detail, payload)]
        kind = payload.get("type") if isinstance(payload.get("type"), str) else "payload"
        return read_part(self.name, kind, payload, "payload", _updates, _phone_of(payload))


def _updates(payload: dict, where: str) -> list[WebhookUpdate]:
    kind = require(payload, "type", str, where)
    if kind == "message_received":
        return [_inbound_message(payload)]
    match = _STATUS_TYPE.fullmatch(kind)
    if match:
        return [_status_update(payload, DeliveryStatus(match.group(1)))]
    raise NotActedOn(Unhandled.UNKNOWN_TYPE, f"{where}.type: Dakiya does not act on {kind[:60]!r}")


def _phone_of(payload: dict) -> str | None:
    data = payload.get("data")
    customer = data.get("customer") if isinstance(data, dict) else None
    return (
        phone_number(customer.get("channel_phone_number")) if isinstance(customer, dict) else None
    )


def message_body(message: OutboundMessage) -> dict:
    """The `/v1/public/message/` JSON for one outbound message (§2.2)."""
    body: dict[str, Any] = {
        # `fullPhoneNumber` alone, never with countryCode/phoneNumber (§2.2).
        "fullPhoneNumber": message.to.removeprefix("+"),
        # Echoed at data.message.meta_data.source_data.callback_data (§2.5).
        "callbackData": message.callback_data,
    }
    if message.template is not None:
        body["type"] = "Template"
        body["template"] = _template(message.template)
    elif message.text is not None:
        body["type"] = "Text"
        body["data"] = {"message": message.text}
    else:
        raise ProviderError("message has neither a template nor text", kind=ErrorKind.PERMANENT)
    return body


def _template(call: TemplateCall) -> dict:
    template: dict[str, Any] = {"name": call.name, "languageCode": call.language}
    if call.header:
        template["headerValues"] = list(call.header)
    template["bodyValues"] = list(call.body)
    # `buttonValues` fills dynamic URL suffixes (and OTP codes) keyed by the string index
    # (§2.2). Quick-reply payloads have no documented slot: Interakt sends the button's
    # label back on a tap, so those parameters are left out.
    button_values: dict[str, list[str]] = {}
    for button in call.buttons:
        if button.sub_type == "url":
            button_values.setdefault(str(button.index), []).append(button.value)
    if button_values:
        template["buttonValues"] = button_values
    return template


def _status_update(payload: dict, status: DeliveryStatus) -> StatusUpdate:
    data = require(payload, "data", dict, "payload")
    message = require(data, "message", dict, "payload.data")
    where = "payload.data.message"
    meta_data = optional(message, "meta_data", dict, where) or {}
    source_data = optional(meta_data, "source_data", dict, f"{where}.meta_data") or {}
    failed = status is DeliveryStatus.FAILED
    error_code = optional(message, "channel_error_code", (str, int), where) if failed else None
    callback = optional(source_data, "callback_data", str, f"{where}.meta_data.source_data")
    time_field = _STATUS_TIME_FIELD.get(status)
    occurred_at = (time_field and _iso_time(message, time_field, where)) or _event_time(payload)
    return StatusUpdate(
        provider=InteraktProvider.name,
        provider_message_id=provider_id(message, "id", where),
        status=status,
        occurred_at=occurred_at,
        recipient=_customer_phone(data, required=False),
        callback_data=cut(callback, MAX_CALLBACK),
        error_code=cut(str(error_code), MAX_CODE) if error_code is not None else None,
        error_text=optional(message, "channel_failure_reason", str, where) if failed else None,
        raw=payload,
    )


def _inbound_message(payload: dict) -> InboundMessage:
    data = require(payload, "data", dict, "payload")
    message = require(data, "message", dict, "payload.data")
    where = "payload.data.message"
    customer = require(data, "customer", dict, "payload.data")
    traits = optional(customer, "traits", dict, "payload.data.customer") or {}
    name = traits.get("name")
    kind = optional(message, "message_content_type", str, where) or "text"
    text, button_payload = _reply_content(message, where)
    return InboundMessage(
        provider=InteraktProvider.name,
        provider_message_id=provider_id(message, "id", where),
        from_phone=_customer_phone(data, required=True),
        type=kind.lower()[:MAX_TYPE],
        occurred_at=_iso_time(message, "received_at_utc", where) or _event_time(payload),
        text=text,
        button_payload=cut(button_payload, MAX_BUTTON_PAYLOAD),
        profile_name=cut(name, MAX_NAME) if isinstance(name, str) else None,
        raw=payload,
    )


def _reply_content(message: dict, where: str) -> tuple[str | None, str | None]:
    """(visible text, button payload). Button replies are undocumented (§2.5: one
    integrator reads `meta_data.button_payload.payload.text`), so any string found there
    is taken leniently and the visible text stands in when `message` is empty."""
    text = message.get("message") if isinstance(message.get("message"), str) else None
    meta_data = optional(message, "meta_data", dict, where) or {}
    button = meta_data.get("button_payload")
    if isinstance(button, dict):
        button = button.get("payload")
    if isinstance(button, dict):
        button = button.get("text") or button.get("payload") or button.get("id")
    button_payload = button if isinstance(button, str) and button else None
    return text or button_payload, button_payload


def _customer_phone(data: dict, *, required: bool) -> str | None:
    """`channel_phone_number` is country code + number without '+' (§2.5); a receipt
    does not need it, a customer's message does."""
    customer = optional(data, "customer", dict, "payload.data") or {}
    phone = phone_number(customer.get("channel_phone_number"))
    if phone is None and required:
        raise ValueError("payload.data.customer.channel_phone_number: no phone number")
    return phone


def _event_time(payload: dict) -> datetime:
    """When Interakt sent the webhook; now when it left the time out."""
    occurred_at = _iso_time(payload, "timestamp", "payload")
    return occurred_at or datetime.now(UTC).replace(tzinfo=None)


def _iso_time(obj: dict, key: str, where: str) -> datetime | None:
    """Interakt times are ISO 8601 in UTC without an offset; normalise to naive UTC."""
    value = optional(obj, key, str, where)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{where}.{key}: not an ISO 8601 time: {value[:40]!r}") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
