"""Meta's word on a template's category (`template_category_update`, PROVIDERS.md §9.3).

An *impending* notice (Meta will move the template to `correct_category` at a time it
names) is news for the admins: an alert naming the template, its language, the
category now and the one announced, when, and the order events and campaigns that send
it. Nothing changes yet.

A *completed* notice is the category in force: stored per template and language
(`TemplateCategory`), so a template Meta made marketing sends as marketing from then on
(`NotificationMap.category_for`: marketing consent, marketing quiet hours and caps), and
its queued and deferred messages become marketing now. The change is audited (actor
`meta`) and shown in `GET /admin/api/templates`. Dakiya never relaxes consent on Meta's
word: a template moved out of marketing still sends as the map says.
"""

from __future__ import annotations

from datetime import datetime

from bot.campaigns.campaigns import CampaignState
from bot.core.audit import audit
from bot.core.models import Campaign, Category, Message, State, TemplateCategory
from bot.core.notifications import NotificationMap
from bot.delivery.providers.base import AccountNews, News, Severity, TemplateCategoryNotice

#: Messages not yet handed to the provider, which a completed notice reclassifies.
WAITING = (State.QUEUED, State.DEFERRED)
LIVE_CAMPAIGNS = tuple(set(CampaignState) - {CampaignState.CANCELLED, CampaignState.DONE})
NAMED = 5  # campaigns named in an alert; the rest are counted


def take_notices(
    notices: list[TemplateCategoryNotice], notifications: NotificationMap, now: datetime
) -> list[AccountNews]:
    """Act on each notice (inside the caller's transaction); the news for the alerts."""
    news = []
    for notice in sorted(notices, key=lambda n: n.occurred_at):
        if notice.completed:
            found = record_completed(notice, notifications, now)
        else:
            found = impending_news(notice, notifications.events_sending(*key(notice)))
        if found is not None:
            news.append(found)
    return news


def key(notice: TemplateCategoryNotice) -> tuple[str, str]:
    return notice.template, notice.language


def impending_news(notice: TemplateCategoryNotice, events: list[str]) -> AccountNews:
    """The alert for a category change Meta has announced (pure, but for the campaigns
    looked up)."""
    when = f"{notice.effective_at:%Y-%m-%d %H:%M} UTC" if notice.effective_at else "soon"
    text = (
        f"Meta will re-categorise template {notice.template} ({notice.language or 'all'}) "
        f"from {notice.category.upper()} to {(notice.announced or '').upper()} on {when}; "
        + uses(events, campaigns_sending(notice.template))
    )
    if notice.announced == Category.MARKETING:
        text += (
            ". From then its messages need marketing consent, follow marketing quiet hours"
            " and caps, and are billed as marketing: map those events to a utility template"
            " or ask Meta to review the category"
        )
    return news_of(notice, text)


def news_of(notice: TemplateCategoryNotice, problem: str | None) -> AccountNews:
    """The alert's news: a problem in words, or (None) the all-clear for its subject."""
    kind = News.PROBLEM if problem else News.CLEARED
    subject = f"template_category:{notice.template}:{notice.language}"
    return AccountNews(
        notice.provider, kind, subject, Severity.WARNING, problem, notice.occurred_at, notice.raw
    )


def record_completed(
    notice: TemplateCategoryNotice, notifications: NotificationMap, now: datetime
) -> AccountNews | None:
    """Store the category Meta says is in force, reclassify the template's waiting
    messages when it is now marketing, audit; None for a notice older than the one kept
    (or the same one again)."""
    template, language = key(notice)
    row = TemplateCategory.get_or_none(
        (TemplateCategory.template == template) & (TemplateCategory.language == language)
    )
    if row is not None and row.changed_at >= notice.occurred_at:
        return None
    before = row.category if row is not None else notice.previous
    fields = {
        "category": notice.category,
        "previous_category": notice.previous or (row.category if row else None),
        "template_id": notice.template_id,
        "changed_at": notice.occurred_at,
        "updated_at": now,
    }
    if row is None:
        TemplateCategory.create(template=template, language=language, **fields)
    else:
        TemplateCategory.update(**fields).where(TemplateCategory.id == row.id).execute()
    moved = reclassify_waiting(template, language, now) if notice.category == "marketing" else 0
    events = notifications.events_sending(template, language)
    details = {
        "before": before,
        "after": notice.category,
        "template_id": notice.template_id,
        "events": events,
        "waiting_now_marketing": moved,
    }
    audit(notice.provider, "template_category", f"{template}:{language}", details, now)
    utility_events = [
        kind for kind in events if notifications.specs[kind].category != Category.MARKETING
    ]
    if notice.category != Category.MARKETING or not (utility_events or moved):
        return news_of(notice, None)
    text = (
        f"Meta re-categorised template {template} ({language or 'all'}) as MARKETING"
        + (f" (it was {before.upper()})" if before else "")
        + f"; {uses(utility_events, [])}: their messages now need marketing consent and "
        f"follow marketing quiet hours and caps ({moved} waiting now marketing). Map those "
        "events to a utility template, or ask Meta to review the category"
    )
    return news_of(notice, text)


def reclassify_waiting(template: str, language: str, now: datetime) -> int:
    """Make the template's queued and deferred messages marketing; how many changed."""
    which = (
        (Message.template_name == template)
        & Message.state.in_(WAITING)
        & (Message.category != Category.MARKETING)
    )
    if language:
        which &= Message.language == language
    return Message.update(category=Category.MARKETING, updated_at=now).where(which).execute()


def campaigns_sending(template: str) -> list[str]:
    rows = Campaign.select(Campaign.name).where(
        (Campaign.template == template) & Campaign.state.in_(LIVE_CAMPAIGNS)
    )
    return [row.name for row in rows.order_by(Campaign.id)]


def uses(events: list[str], campaigns: list[str]) -> str:
    """ "order events shipped, delivered send it" and the campaigns, in words."""
    parts = []
    if events:
        parts.append(f"order events {', '.join(events)}")
    if campaigns:
        more = len(campaigns) - NAMED
        named = ", ".join(campaigns[:NAMED]) + (f" and {more} more" if more > 0 else "")
        parts.append(f"campaigns {named}")
    return (" and ".join(parts) + " send it") if parts else "no order event or campaign sends it"
