"""The audit log: every admin action and every erasure, appended (table audit_log,
listed by `GET /admin/api/audit-log`)."""

from __future__ import annotations

from datetime import datetime

from bot.core.models import AuditLog


def audit(actor: str, action: str, subject: str | None, details: dict, now: datetime) -> AuditLog:
    """Append an audit row. `subject` must not identify anyone (use the suppression hash)."""
    return AuditLog.create(
        actor=actor, action=action, subject=subject, details=details, created_at=now
    )
