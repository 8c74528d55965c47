"""Which Graph API version Dakiya talks to, and whether Meta still serves it.

The retirement dates are data (meta_versions.toml, with its source); `version_news` is the
pure judgement the start-up check and the alert check share: nothing to say, a version
retiring soon or unknown to the table (warning), or retired (critical).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from bot.delivery.providers.base import Severity

TABLE_FILE = Path(__file__).with_name("meta_versions.toml")


@dataclass(frozen=True, slots=True)
class VersionTable:
    """Each known version's retirement day (None: not announced yet)."""

    retires: dict[str, date | None]
    warn_days: int
    source: str


@dataclass(frozen=True, slots=True)
class VersionNews:
    severity: Severity
    text: str


@cache
def version_table(path: Path = TABLE_FILE) -> VersionTable:
    """The table in `path` (the shipped file unless a test gives another)."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    retires = {name: row.get("retires") for name, row in data["versions"].items()}
    return VersionTable(retires, int(data["warn_days"]), str(data["source"]))


def version_news(version: str, today: date, table: VersionTable) -> VersionNews | None:
    """What admins must hear about META_API_VERSION `version` on `today`, if anything."""
    if version not in table.retires:
        known = ", ".join(sorted(table.retires, key=_number, reverse=True))
        return VersionNews(
            Severity.WARNING,
            f"META_API_VERSION {version} is not a Graph API version Dakiya knows "
            f"(known: {known}); check it against {table.source}",
        )
    retires = table.retires[version]
    if retires is None:
        return None
    left = (retires - today).days
    if left <= 0:
        return VersionNews(
            Severity.CRITICAL,
            f"META_API_VERSION {version} was retired by Meta on {retires.isoformat()}: "
            f"sends fail until it is raised to a supported version ({_newest(table)})",
        )
    if left <= table.warn_days:
        return VersionNews(
            Severity.WARNING,
            f"META_API_VERSION {version} retires on {retires.isoformat()} (in {left} "
            f"day{'s' if left != 1 else ''}): raise it to {_newest(table)} before then",
        )
    return None


def _newest(table: VersionTable) -> str:
    return max(table.retires, key=_number)


def _number(version: str) -> float:
    try:
        return float(version.removeprefix("v"))
    except ValueError:
        return 0.0
