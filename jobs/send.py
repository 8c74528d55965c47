"""Send jobs, and the commands that retry a dead-lettered message and show the sandbox's
sends."""

from __future__ import annotations

import json

import click

from bot.campaigns import campaigns
from bot.core.models import db, utcnow
from bot.delivery import dispatch
from bot.delivery.providers.sandbox import recorded
from bot.delivery.sending import retry_failed_message
from bot.extensions import QUEUE_NAMES, services


def send_due(queue: str = "orders") -> dict[str, int]:
    """RQ entry point: claim and send due messages in batches (bot/delivery/dispatch.py); what
    happened to them, by outcome."""
    svc = services()
    ahead = [svc.queues[name] for name in QUEUE_NAMES[: QUEUE_NAMES.index(queue)]]
    with db.connection_context():
        outcomes = dispatch.drain(
            svc.sender,
            svc.queues,
            queue,
            svc.settings.send_job_seconds,
            # A campaign steps aside for customers' messages, order updates and receipts.
            step_aside=lambda: any(q.count > 0 for q in ahead),
        )
        if queue == campaigns.QUEUE:
            # Committed above, so the last sender to finish sees every message settled.
            campaigns.finish_settled(utcnow())
        return outcomes


def send_message(message_id: int) -> str:
    """RQ entry point: try to send one message once (a retry, or the naive path)."""
    with db.connection_context():
        return services().sender().send_one(message_id, utcnow())


@click.command("retry-message")
@click.argument("message_id", type=int)
def retry_message_command(message_id: int) -> None:
    """Send a dead-lettered (failed) message again."""
    with db.connection_context():
        ok = retry_failed_message(message_id, services().queues, utcnow())
    click.echo("queued again" if ok else "not a failed message; nothing done")


@click.command("sandbox-outbox")
@click.option("--limit", default=20, show_default=True)
def sandbox_outbox_command(limit: int) -> None:
    """Show what the sandbox provider would have sent, newest first."""
    for item in recorded(services().redis, limit):
        click.echo(json.dumps(item, ensure_ascii=False))
