"""RQ entry points: thin functions that load rows by id, call `bot` code, save results.

They run inside the app context that `jobs.worker` pushes before the work loop. Beside
each job is the CLI command that does its work by hand, now (`flask --app wsgi sweep`,
`redact`, `rollup`, `test-alert`, `retry-message`, `sandbox-outbox`); `init_app`
registers them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: RQ imports `jobs.<module>` for every job, and that must not load
    # every other job module (and the `bot` code behind it) first.
    from jobs import alerts, analytics, retention, send, sweep

    for command in (
        sweep.sweep_command,
        retention.redact_command,
        analytics.rollup_command,
        send.retry_message_command,
        send.sandbox_outbox_command,
        alerts.test_alert_command,
    ):
        app.cli.add_command(command)
