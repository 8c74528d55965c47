"""What Meta's webhooks about the business account mean, in Dakiya's words: the number's
quality, a template's review status, a violation or ban (PROVIDERS.md §1.7).

Meta's event names stay here; `bot.observability.alerts` sees only `AccountNews` (a subject, whether
it is a problem or cleared, how severe, and the words for admins).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.core.languages import template_code
from bot.delivery.providers.base import AccountNews, News, Severity, TemplateCategoryNotice
from bot.delivery.providers.http import optional, require

#: The change field that says a template's category is changing or has changed (§9.3).
CATEGORY_FIELD = "template_category_update"
MAX_CATEGORY = 40

#: Change fields about the account rather than a message: they feed the alerts.
ACCOUNT_FIELDS = frozenset(
    {
        "account_update",
        "phone_number_quality_update",
        "message_template_status_update",
        # The business number's own @username (§9.1); Meta's reference spells the field
        # in the plural, client libraries have seen the singular too.
        "business_username_updates",
        "business_username_update",
    }
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
    elif field.startswith("business_username_update"):
        kind, subject, severity, text = _username(detail)
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


def _username(detail: dict) -> Judged:
    """`{display_phone_number, username, status}`, status approved | reserved | deleted
    (no username then): customers who find the shop by its username cannot once it is
    deleted, which admins should hear about; approved clears that."""
    number = detail.get("display_phone_number") or "number"
    subject = f"username:{number}"
    status = str(detail.get("status") or "").lower()
    if status == "deleted":
        text = f"the WhatsApp username of {number} was deleted: customers cannot find it by name"
        return News.PROBLEM, subject, Severity.WARNING, text
    cleared = News.CLEARED if status == "approved" else News.NEUTRAL
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


def category_notice(provider: str, detail: dict, where: str, occurred_at: datetime):
    """Meta's `template_category_update` (§9.3) as a TemplateCategoryNotice: impending
    when it names a `correct_category`, else completed (`new_category` is in force; the
    notice is routed by it, never by `correct_category`). ValueError naming the place
    when the template or its category is missing."""
    name = require(detail, "message_template_name", str, where)[:128]
    category = require(detail, "new_category", str, where)
    announced = optional(detail, "correct_category", str, where)
    previous = optional(detail, "previous_category", str, where)
    language = optional(detail, "message_template_language", str, where) or ""
    template_id = detail.get("message_template_id")
    effective = detail.get("category_update_timestamp")
    return TemplateCategoryNotice(
        provider=provider,
        template=name,
        language=template_code(language)[:16],  # Meta writes "en-US" here, "en_US" to send
        category=_category(category),
        previous=_category(previous) if previous else None,
        announced=_category(announced) if announced else None,
        effective_at=_unix(effective),
        template_id=str(template_id)[:64] if isinstance(template_id, int | str) else None,
        occurred_at=occurred_at,
        raw=detail,
    )


def _category(value: str) -> str:
    return value.strip().lower()[:MAX_CATEGORY]


def _unix(value) -> datetime | None:
    """A unix time in seconds (number or digits), as naive UTC; None when it is not one."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
