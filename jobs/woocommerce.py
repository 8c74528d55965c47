"""The WooCommerce catch-up pull (bot/intake/woo_catch_up.py), every
WOOCOMMERCE_CATCH_UP_MINUTES from the worker's cron, one at a time across workers."""

from __future__ import annotations

import logging

from bot.core.models import db, utcnow
from bot.core.triggers import single_run
from bot.extensions import services
from bot.intake.woo_catch_up import catch_up, configured
from bot.integrations.woocommerce_api import WooCommerceError

log = logging.getLogger(__name__)

LOCK_KEY = "dakiya:woocommerce:catch-up"
TIMEOUT_SECONDS = 600


def catch_up_job() -> int:
    """RQ entry point: how many events the pull brought that the webhooks had not."""
    svc = services()
    if not configured(svc.settings):
        return 0
    with single_run(svc.redis, LOCK_KEY, TIMEOUT_SECONDS) as ours:
        if not ours:
            return 0
        with db.connection_context():
            try:
                pulled = catch_up(svc, utcnow())
            except WooCommerceError as exc:
                # The cursor stays: the next pull asks for the same orders again.
                log.warning("WooCommerce catch-up: the store did not answer: %s", exc)
                return 0
    log.info(
        "WooCommerce catch-up: %d orders read, %d new events, %d unreadable",
        pulled.orders,
        pulled.new,
        pulled.refused,
    )
    return pulled.new
