"""What Meta's webhooks about the business account mean, in Dakiya's words: the number's
quality, a template's review status, a violation or ban (PROVIDERS.md §1.7).

Meta's event names stay here; `bot.observability.alerts` sees only `AccountNews` (a subject, whether
it is a problem or cleared, how severe, and the words for admins).
"""

from __future__ import annotations

import json
from datetime import datetime

from bot.delivery.providers.base import AccountNews, News, Severity

#: Change fields about the account rather than a message: they feed the alerts.
ACCOUNT_FIELDS = frozenset(
    {"account_update", "phone_number_quality_update", "message_template_status_update"}
)

QUALITY_PROBLEMS = frozenset({"FLAGGED", "DOWNGRADE"})
QUALITY_CLEARED = frozenset({"UNFLAGGED", "UPGRADE"})
TEMPLATE_PROBLEMS = frozenset({"PAUSED", "DISABLED", "REJECTED", "FLAGGED", "LOCKED"})
TEMPLATE_CLEARED = frozenset({"APPROVED", "REINSTATED", "UNLOCKED", "DELETED", "ARCHIVED"})
ACCOUNT_PROBLEMS = frozenset({"ACCOUNT_VIOLATION", "ACCOUNT_RESTRICTION", "ACCOUNT_DELETED"})
BAN_PROBLEMS = frozenset({"DISABLE", "SCHEDULE_FOR_DISABLE"})


def account_news(provider: str, field: str, detail: dict, occurred_at: datetime) -> AccountNews:
    """The news in one account change (`field`, its `value` as `detail`). Never raises:
    a part Meta leaves out or sends in another shape only leaves words out."""
    event = str(detail.get("event") or "").upper()
    if field == "phone_number_quality_update":
        kind, subject, severity, text = _quality(detail, event)
    elif field == "message_template_status_update":
        kind, subject, severity, text = _template(detail, event)
    else:
        kind, subject, severity, text = _account(detail, event)
    return AccountNews(provider, kind, subject, severity, text, occurred_at, raw=detail)


Judged = tuple[News, str, Severity, str | None]


def _quality(detail: dict, event: str) -> Judged:
    subject = f"quality:{detail.get('display_phone_number') or 'number'}"
    if event in QUALITY_PROBLEMS:
        limit = detail.get("max_daily_conversations_per_business")
        limit = detail.get("current_limit") or limit
        text = f"Meta {event} the WhatsApp number {detail.get('display_phone_number')}"
        text += f" for low quality (messaging limit now {limit})" if limit else ""
        return News.PROBLEM, subject, Severity.CRITICAL, text
    cleared = News.CLEARED if event in QUALITY_CLEARED else News.NEUTRAL
    return cleared, subject, Severity.WARNING, None


def _template(detail: dict, event: str) -> Judged:
    name = detail.get("message_template_name") or detail.get("message_template_id")
    language = detail.get("message_template_language") or ""
    subject = f"template:{name}:{language}"
    if event in TEMPLATE_PROBLEMS:
        why = _template_reason(detail)
        text = f"template {name} ({language}) is {event}" + (f": {why}" if why else "")
        return News.PROBLEM, subject, Severity.WARNING, text
    cleared = News.CLEARED if event in TEMPLATE_CLEARED else News.NEUTRAL
    return cleared, subject, Severity.WARNING, None


def _account(detail: dict, event: str) -> Judged:
    ban_info = detail.get("ban_info")
    ban = str(ban_info.get("waba_ban_state") or "").upper() if isinstance(ban_info, dict) else ""
    if event in ACCOUNT_PROBLEMS:
        info = detail.get("violation_info") or detail.get("restriction_info") or ""
        text = f"WhatsApp Business Account: {event}" + (f" {json.dumps(info)}" if info else "")
        return News.PROBLEM, "account", Severity.CRITICAL, text
    if event == "DISABLED_UPDATE" and ban in BAN_PROBLEMS:
        text = f"WhatsApp Business Account ban state {ban}"
        return News.PROBLEM, "account", Severity.CRITICAL, text
    if event == "DISABLED_UPDATE" and ban == "REINSTATE":
        return News.CLEARED, "account", Severity.CRITICAL, None
    return News.NEUTRAL, "account", Severity.WARNING, None


def _template_reason(detail: dict) -> str:
    """Why Meta paused or rejected a template, when it says (it writes "NONE" if not)."""
    for holder, key in (
        (detail.get("other_info"), "description"),
        (detail.get("rejection_info"), "reason"),
        (detail, "reason"),
    ):
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and value and value.upper() != "NONE":
            return value
    return ""
