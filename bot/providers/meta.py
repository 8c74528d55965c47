"""Meta WhatsApp Cloud API: send through the Graph `/messages` endpoint and read its
webhooks (shared/PROVIDERS.md §1)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from bot.providers.base import (
    AccountUpdate,
    DeliveryStatus,
    ErrorKind,
    InboundMessage,
    OutboundMessage,
    PreferenceUpdate,
    ProviderError,
    SendResult,
    StatusUpdate,
    TemplateCall,
    WebhookUpdate,
)
from bot.providers.concurrent import HttpRequest
from bot.providers.http import (
    Answer,
    HttpProvider,
    ensure_object,
    header,
    items,
    json_body,
    optional,
    parse_retry_after,
    require,
)
from bot.signing import verify_hmac

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
        + (132000, 132001, 132005, 132007, 132012, 132015, 132016),
        ErrorKind.PERMANENT,
    ),
    **dict.fromkeys(range(200, 300), ErrorKind.PERMANENT),  # missing permission (§1.11)
}

#: Change fields about the account rather than a message: they feed the alerts.
ACCOUNT_FIELDS = frozenset(
    {"account_update", "phone_number_quality_update", "message_template_status_update"}
)

# Template button parameters differ by sub_type: a URL suffix is text, a quick reply
# carries the payload echoed back on the tap (§1.2, §1.8 b2).
_BUTTON_PARAMETER: dict[str, Callable[[str], dict]] = {
    "url": lambda value: {"type": "text", "text": value},
    "quick_reply": lambda value: {"type": "payload", "payload": value},
}


def meta_error_kind(code: int | None, http_status: int) -> ErrorKind:
    """Classify by the documented code first, by HTTP status only for unknown codes."""
    if code in META_ERROR_KINDS:
        return META_ERROR_KINDS[code]
    if http_status == 429:
        return ErrorKind.RATE_LIMITED
    return ErrorKind.RETRY if http_status >= 500 else ErrorKind.PERMANENT


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
    raise ProviderError(
        _join(error.get("message"), details) or f"HTTP {response.status_code}",
        kind=meta_error_kind(code, response.status_code),
        code=str(code) if code is not None else f"http_{response.status_code}",
        retry_after=parse_retry_after(response),
    )


class MetaProvider(HttpProvider):
    """WhatsApp Cloud API, called directly with a system-user access token."""

    name = "meta"

    def request_for(self, message: OutboundMessage) -> HttpRequest:
        s = self.settings
        return HttpRequest(
            f"{s.meta_api_base_url}/{s.meta_api_version}/{s.meta_phone_number_id}/messages",
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
            self.settings.meta_app_secret,
            body,
            header(headers, "X-Hub-Signature-256"),
            prefix="sha256=",
        )

    def parse_webhook(self, payload: dict) -> list[WebhookUpdate]:
        """Statuses and inbound messages from every `messages` change, marketing
        stop/resume from `user_preferences` changes, and account news (quality, template
        status, account updates) for the alerts, in payload order (§1.7, §1.10).

        Other change fields yield nothing here.
        """
        payload = ensure_object(payload, "payload")
        if payload.get("object") != "whatsapp_business_account":
            raise ValueError(f"payload.object: not a WhatsApp webhook: {payload.get('object')!r}")
        updates: list[WebhookUpdate] = []
        for e, entry in enumerate(require(payload, "entry", list, "payload")):
            where = f"entry[{e}]"
            for c, change in enumerate(items(ensure_object(entry, where), "changes", where)):
                where = f"entry[{e}].changes[{c}]"
                field = require(change, "field", str, where)
                if field in ACCOUNT_FIELDS:
                    value = require(change, "value", dict, where)
                    at = _entry_time(entry, f"entry[{e}]")
                    updates.append(AccountUpdate(MetaProvider.name, field, value, at))
                    continue
                if field not in ("messages", "user_preferences"):
                    continue
                value = require(change, "value", dict, where)
                where += ".value"
                for i, pref in enumerate(items(value, "user_preferences", where)):
                    updates.append(_preference_update(pref, f"{where}.user_preferences[{i}]"))
                names = _profile_names(items(value, "contacts", where), where)
                for i, status in enumerate(items(value, "statuses", where)):
                    updates.append(_status_update(status, f"{where}.statuses[{i}]"))
                for i, msg in enumerate(items(value, "messages", where)):
                    updates.append(_inbound_message(msg, names, f"{where}.messages[{i}]"))
        return updates


def message_body(message: OutboundMessage) -> dict:
    """The `/messages` JSON for one outbound message, exactly as §1.2 documents it."""
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to.removeprefix("+"),
    }
    if message.callback_data:
        # Echoed on every status webhook for this message: how ambiguous sends reconcile.
        body["biz_opaque_callback_data"] = message.callback_data
    if message.template is not None:
        body["type"] = "template"
        body["template"] = _template(message.template)
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


def _status_update(status: dict, where: str) -> StatusUpdate:
    errors = items(status, "errors", where)
    error = errors[0] if errors else {}
    code = optional(error, "code", (int, str), f"{where}.errors[0]")
    recipient = optional(status, "recipient_id", str, where)
    return StatusUpdate(
        provider=MetaProvider.name,
        provider_message_id=require(status, "id", str, where),
        status=_delivery_status(require(status, "status", str, where)),
        occurred_at=_unix_time(status, where),
        recipient=f"+{recipient}" if recipient else None,
        callback_data=optional(status, "biz_opaque_callback_data", str, where),
        error_code=str(code) if code is not None else None,
        error_text=_error_text(error) if error else None,
        raw=status,
    )


def _preference_update(pref: dict, where: str) -> PreferenceUpdate:
    value = require(pref, "value", str, where)
    if value not in ("stop", "resume"):
        raise ValueError(f"{where}.value: expected stop or resume, got {value!r}")
    return PreferenceUpdate(
        provider=MetaProvider.name,
        phone="+" + require(pref, "wa_id", str, where),
        category="marketing",
        opted_in=value == "resume",
        occurred_at=_unix_time(pref, where),
        detail=optional(pref, "detail", str, where),
    )


def _inbound_message(msg: dict, profile_names: dict[str, str], where: str) -> InboundMessage:
    sender = require(msg, "from", str, where)
    kind = require(msg, "type", str, where)
    text, button_payload = _reply_content(msg, kind, where)
    return InboundMessage(
        provider=MetaProvider.name,
        provider_message_id=require(msg, "id", str, where),
        from_phone=f"+{sender}",
        type=kind,
        occurred_at=_unix_time(msg, where),
        text=text,
        button_payload=button_payload,
        profile_name=profile_names.get(sender),
        raw=msg,
    )


def _reply_content(msg: dict, kind: str, where: str) -> tuple[str | None, str | None]:
    """(visible text, button payload) for the inbound types we act on (§1.8)."""
    if kind == "text":
        return require(require(msg, "text", dict, where), "body", str, f"{where}.text"), None
    if kind == "button":  # quick reply on a template: payload is the one we set (§1.8 b2)
        button = require(msg, "button", dict, where)
        return (
            optional(button, "text", str, f"{where}.button"),
            optional(button, "payload", str, f"{where}.button"),
        )
    if kind == "interactive":  # reply button or list pick on a session message (§1.8 b1)
        interactive = require(msg, "interactive", dict, where)
        reply_type = optional(interactive, "type", str, f"{where}.interactive")
        if reply_type in ("button_reply", "list_reply"):
            reply = require(interactive, reply_type, dict, f"{where}.interactive")
            inner = f"{where}.interactive.{reply_type}"
            return optional(reply, "title", str, inner), optional(reply, "id", str, inner)
    return None, None


def _profile_names(contacts: list[dict], where: str) -> dict[str, str]:
    names = {}
    for i, contact in enumerate(contacts):
        wa_id = optional(contact, "wa_id", str, f"{where}.contacts[{i}]")
        profile = optional(contact, "profile", dict, f"{where}.contacts[{i}]") or {}
        name = optional(profile, "name", str, f"{where}.contacts[{i}].profile")
        if wa_id and name:
            names[wa_id] = name
    return names


def _delivery_status(value: str) -> DeliveryStatus:
    # New statuses (e.g. `played` for voice) must not break parsing (ANCHORS.md, pywa).
    try:
        return DeliveryStatus(value)
    except ValueError:
        return DeliveryStatus.UNKNOWN


def _unix_time(obj: dict, where: str) -> datetime:
    """Meta timestamps are unix seconds as a string; we store naive UTC."""
    value = require(obj, "timestamp", (str, int), where)
    try:
        return datetime.fromtimestamp(int(value), tz=UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"{where}.timestamp: not unix seconds: {value!r}") from exc


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
