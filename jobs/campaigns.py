"""Campaign jobs: each run creates and enqueues one batch, then queues the next run."""

from __future__ import annotations

from bot.campaigns import campaigns
from bot.core.models import db, utcnow
from bot.extensions import services


def run_campaign_batch(campaign_id: int) -> dict:
    """RQ entry point (queue "campaigns"): the campaign's next batch, if it is active."""
    svc = services()
    with db.connection_context():
        settings = svc.current_settings()
        return campaigns.run_batch(
            campaign_id,
            svc.queues,
            settings.default_language,
            settings.default_timezone,
            utcnow(),
        )
