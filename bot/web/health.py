"""Liveness and readiness probes for the PaaS router and monitors."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from peewee import DatabaseError

from bot.core.models import db
from bot.extensions import services

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def liveness():
    """The process is up (it checks nothing else, so a DB outage does not restart it)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readiness():
    """Ready to take traffic: the database and Redis both answer."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(ok == "ok" for ok in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


def _check_database() -> str:
    try:
        db.execute_sql("SELECT 1")
    except DatabaseError as exc:
        log.warning("readiness: database unavailable: %s", exc)
        return "unavailable"
    return "ok"


def _check_redis() -> str:
    try:
        services().redis.ping()
    except Exception as exc:  # any failure to answer means not ready
        log.warning("readiness: redis unavailable: %s", exc)
        return "unavailable"
    return "ok"
