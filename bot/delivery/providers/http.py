"""The HTTP boundary every provider shares: one POST seam, one network-error classifier,
`Retry-After`, and typed reads from the JSON that providers send us.

Kept apart from `base.py` so the interface stays free of transport details.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from bot.delivery.providers.base import (
    ErrorKind,
    OutboundMessage,
    Pace,
    Provider,
    ProviderError,
    SendResult,
    Unhandled,
    UnhandledItem,
    WebhookUpdate,
)
from bot.delivery.providers.concurrent import ConcurrentPoster, HttpAnswer, HttpRequest

#: A provider's answer, from `requests` (one send) or aiohttp (a batch): same attributes.
Answer = requests.Response | HttpAnswer

# Failures that happen before a single byte of the request reaches the provider: resending
# cannot duplicate a message. (URL/schema errors are configuration mistakes, also unsent.)
_NEVER_SENT = (
    requests.ConnectTimeout,
    requests.exceptions.SSLError,
    requests.exceptions.ProxyError,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


def classify_network_error(exc: requests.RequestException) -> ErrorKind:
    """RETRY when nothing reached the provider, AMBIGUOUS when the send may have gone through.

    A read timeout or a connection dropped after the request was written leaves us not
    knowing whether the provider accepted it; resending could message the customer twice,
    so the sender must reconcile by callback data instead (DESIGN.md, ambiguous sends).
    """
    if isinstance(exc, _NEVER_SENT) or _connection_refused(exc):
        return ErrorKind.RETRY
    return ErrorKind.AMBIGUOUS


def _connection_refused(exc: BaseException) -> bool:
    """True when urllib3 could not even open a connection (refused, DNS, unreachable)."""
    if not isinstance(exc, requests.ConnectionError):
        return False
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        cause = todo.pop()
        if id(cause) in seen or not isinstance(cause, BaseException):
            continue
        seen.add(id(cause))
        if isinstance(cause, NewConnectionError | ConnectionRefusedError):
            return True
        if isinstance(cause, MaxRetryError):
            todo.append(cause.reason)
        todo += [*cause.args, cause.__cause__, cause.__context__]
    return False


class HttpProvider(Provider):
    """A provider that sends with one JSON POST per message: `request_for` builds it,
    `result_from` reads the answer. `send` posts one message with `requests`; the sender's
    batches (`start_many`) go out concurrently over aiohttp's keep-alive pool in the
    background, however small, so a one-message batch never holds up the next."""

    def request_for(self, message: OutboundMessage) -> HttpRequest:
        raise NotImplementedError

    def result_from(self, response: Answer) -> SendResult:
        """The provider's id for an accepted message; `ProviderError` otherwise."""
        raise NotImplementedError

    def send(self, message: OutboundMessage) -> SendResult:
        request = self.request_for(message)
        response = post_json(
            self.session,
            request.url,
            headers=request.headers,
            body=request.body,
            timeout=self.timeout,
        )
        return self.result_from(response)

    def start_many(
        self, messages: list[OutboundMessage], pace: Pace | None = None
    ) -> Callable[[], list[SendResult | ProviderError]]:
        prepared = [self.request_for(m) for m in messages]
        offsets = [pace.offset(n, len(messages)) for n in range(len(messages))] if pace else None
        pending = self._poster.submit(prepared, offsets)
        return lambda: [self._result_or_error(answer) for answer in pending.result()]

    @cached_property
    def _poster(self) -> ConcurrentPoster:
        return ConcurrentPoster(self.timeout)

    def _result_or_error(self, answer: HttpAnswer | ProviderError) -> SendResult | ProviderError:
        if isinstance(answer, ProviderError):
            return answer
        try:
            return self.result_from(answer)
        except ProviderError as error:
            return error


def post_json(
    session: requests.Session,
    url: str,
    *,
    headers: Mapping[str, str],
    body: dict,
    timeout: float,
) -> requests.Response:
    """POST `body` as JSON; network failures become `ProviderError` with a classified kind."""
    try:
        return session.post(url, json=body, headers=dict(headers), timeout=timeout)
    except requests.RequestException as exc:
        raise ProviderError(
            f"{type(exc).__name__}: {exc}", kind=classify_network_error(exc)
        ) from exc


def parse_retry_after(response: Answer) -> float | None:
    """Seconds from a numeric `Retry-After` header; None when absent or an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def json_body(response: Answer) -> Any:
    """The response's JSON, or None when the body is not JSON (e.g. a proxy's HTML page)."""
    try:
        return response.json()
    except ValueError:
        return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, case-insensitively even when `headers` is a plain dict."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


# Webhook bodies: every structural problem surfaces as ValueError naming the field (never
# KeyError or TypeError), and `read_part` turns it into an UnhandledItem for that part
# alone, so one unreadable item never costs the rest of a signed delivery.

#: The longest provider id the tables keep (`provider_message_id`): a longer one is not
#: an id Dakiya can match, so its item is unreadable.
MAX_PROVIDER_ID = 128
#: A customer's number as providers send it: country code and number, digits only.
_PHONE_DIGITS = re.compile(r"\+?([1-9]\d{5,14})")
#: Column sizes (bot/core/models.py): free text from a provider is cut to fit, never refused.
MAX_NAME, MAX_BUTTON_PAYLOAD, MAX_CALLBACK, MAX_CODE, MAX_TYPE = 200, 512, 512, 32, 32
#: Details are words about a problem, not a copy of the payload.
MAX_DETAIL = 500


class NotActedOn(ValueError):
    """A readable part Dakiya does not act on (`reason` says why): kept raw, not an error."""

    def __init__(self, reason: Unhandled, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def read_part(
    provider: str,
    kind: str,
    raw: Any,
    where: str,
    read: Callable[[Any, str], list[WebhookUpdate]],
    phone: str | None = None,
) -> list[WebhookUpdate]:
    """`read(raw, where)`'s updates, or one UnhandledItem holding `raw` when this part
    cannot be read (ValueError, TypeError) or is not acted on (`NotActedOn`)."""
    try:
        return read(raw, where)
    except (ValueError, TypeError) as exc:
        reason = exc.reason if isinstance(exc, NotActedOn) else Unhandled.MALFORMED
        return [unhandled(provider, kind, reason, str(exc), raw, where, phone)]


def unhandled(
    provider: str,
    kind: str,
    reason: Unhandled,
    detail: str,
    raw: Any,
    where: str = "",
    phone: str | None = None,
) -> UnhandledItem:
    return UnhandledItem(provider, kind[:64], reason, detail[:MAX_DETAIL], raw, where, phone)


def phone_number(value: object) -> str | None:
    """`value` as E.164 when it is a provider's digits-only number (a leading + allowed)."""
    match = _PHONE_DIGITS.fullmatch(value) if isinstance(value, str) else None
    return f"+{match.group(1)}" if match else None


def provider_id(obj: Mapping[str, Any], key: str, where: str) -> str:
    """A provider's id for an item (what deduplicates it): a non-empty string that fits."""
    value = require(obj, key, str, where)
    if not value or len(value) > MAX_PROVIDER_ID:
        raise ValueError(f"{where}.{key}: not an id of 1 to {MAX_PROVIDER_ID} characters")
    return value


def cut(value: str | None, limit: int) -> str | None:
    """Free text (a name, a label) cut to the column that keeps it."""
    return value[:limit] if value else value


def require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """`obj[key]`, which must be present and of `kind`, else ValueError naming `where.key`."""
    value = obj.get(key)
    if value is None or not isinstance(value, kind):
        raise ValueError(f"{where}.{key}: expected {_names(kind)}, got {type(value).__name__}")
    return value


def optional(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """`obj[key]` or None when absent/null; present with another type is a ValueError."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise ValueError(f"{where}.{key}: expected {_names(kind)}, got {type(value).__name__}")
    return value


def ensure_object(payload: object, where: str) -> dict:
    if not isinstance(payload, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)


_JSON_NAMES = {str: "string", int: "number", dict: "object", list: "array", bool: "boolean"}
