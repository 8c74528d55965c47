"""The operator's dashboard (`GET /admin/`): health, the send funnel and its rates over
the last two weeks, this month's WhatsApp spend, templates, campaigns, A/B tests, recent
failures, suppressions and opt-outs, on one page.

Figures come from `bot.observability.analytics` (daily rollups), so the page never scans the message
table; only the health, campaign and A/B test panels and the recent failures read live rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import render_template
from peewee import fn
from rq import Worker
from rq.registry import FailedJobRegistry

from bot.campaigns import campaigns, experiments
from bot.core import runtime
from bot.core.models import Alert, Campaign, ConsentEvent, Experiment, Message, State, utcnow
from bot.core.phones import mask
from bot.extensions import QUEUE_NAMES, services
from bot.observability import analytics, cod_stats, spend
from bot.web.admin import bp

WINDOW_DAYS = 14
RECENT_FAILURES = 20
RECENT_CAMPAIGNS = 20
RECENT_EXPERIMENTS = 10


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart's numbers: the page draws them and also lists them in a table."""

    id: str
    title: str
    kind: str  # a Chart.js type: "bar" | "line"
    labels: list[str]
    series: dict[str, list[float | None]]
    unit: str = ""

    def as_json(self) -> dict:
        return {
            "type": self.kind,
            "labels": self.labels,
            "series": [{"label": k, "values": v} for k, v in self.series.items()],
            "unit": self.unit,
        }


@bp.get("/")
def dashboard():
    """The dashboard page (viewers and admins)."""
    today = utcnow().date()
    start = today - timedelta(days=WINDOW_DAYS - 1)
    by_day = analytics.summary(start, today, "day")
    by_template = analytics.summary(start, today, "template")["rows"]
    days = _each_day(start, today)
    card = runtime.rate_card(services().settings.rate_card_file)
    month = spend.summary(spend.month_start(today), today, card)
    return render_template(
        "dashboard/index.html",
        start=start,
        end=today,
        health=health(),
        charts=[
            *charts(days, _rows_by_day(by_day["rows"]), opt_outs_by_day(start, days)),
            spend_chart(month),
        ],
        spend=month,
        cod=cod_stats.cod_outcomes(start, today),
        totals=by_day["totals"],
        templates=by_template,
        failures=recent_failures(),
        suppressions=suppressions_by_reason(by_day["rows"]),
        experiments=[row for row in by_template if "/" in row["key"]],
        campaigns=campaign_rows(),
        tests=experiment_rows(),
    )


def campaign_rows(limit: int = RECENT_CAMPAIGNS) -> list[dict]:
    """The newest campaigns with their message counts (`campaigns.progress`)."""
    newest = Campaign.select().order_by(Campaign.id.desc()).limit(limit)
    return [{"id": c.id, "name": c.name, "state": c.state, **campaigns.progress(c)} for c in newest]


def experiment_rows(limit: int = RECENT_EXPERIMENTS) -> list[dict]:
    """The newest started A/B tests, each with its per-variant results and the variant
    that has won significantly (or was rolled out), if any."""
    started = (
        Experiment.select()
        .where(Experiment.started_at.is_null(False))
        .order_by(Experiment.id.desc())
        .limit(limit)
    )
    found = []
    for experiment in started:
        rows = experiments.results(experiment)
        winner = experiment.winner or experiments.decide_rollout(
            rows, min_sample=experiment.min_sample
        )
        found.append({"experiment": experiment, "results": rows, "winner": winner})
    return found


def health() -> dict:
    """What an operator checks first: is work piling up, is anyone working on it, when
    did a message last go out, and what is alerting."""
    svc = services()
    queues = [
        {
            "name": name,
            "waiting": svc.queues[name].count,
            "failed": FailedJobRegistry(queue=svc.queues[name]).count,
        }
        for name in QUEUE_NAMES
    ]
    return {
        "queues": queues,
        "workers": Worker.count(connection=svc.redis),
        "last_sent_at": last_sent_at(),
        "alerts": active_alerts(),
    }


def last_sent_at() -> datetime | None:
    value = Message.select(fn.MAX(Message.sent_at)).scalar()
    if isinstance(value, str):  # SQLite hands aggregates back as text
        value = Message.sent_at.python_value(value)
    return value


def active_alerts() -> list[Alert]:
    return list(Alert.select().where(Alert.state == "firing").order_by(Alert.fired_at))


def charts(days: list[date], rows: dict[str, dict], opt_outs: list[int]) -> list[Chart]:
    labels = [day.isoformat() for day in days]
    column = {
        name: [rows.get(label, {}).get(name) or 0 for label in labels]
        for name in ("sent", "delivered", "read", "failed")
    }
    funnel = Chart(
        "funnel",
        "Funnel, last 14 days",
        "bar",
        ["sent", "delivered", "read"],
        {"messages": [sum(column[s]) for s in ("sent", "delivered", "read")]},
    )
    volume = Chart("volume", "Messages per day", "bar", labels, column)
    rates = Chart(
        "rates",
        "Delivery and read rate per day",
        "line",
        labels,
        {
            "delivery rate": [
                _percent(rows.get(label, {}).get("delivery_rate")) for label in labels
            ],
            "read rate": [_percent(rows.get(label, {}).get("read_rate")) for label in labels],
        },
        unit="%",
    )
    opt_out = Chart("opt_outs", "Opt-outs per day", "bar", labels, {"opt-outs": opt_outs})
    return [funnel, volume, rates, opt_out]


def spend_chart(month: dict) -> Chart:
    """This month's estimated spend per pricing category."""
    rows = month["by_category"]
    return Chart(
        "spend",
        f"Estimated spend this month ({month['currency']})",
        "bar",
        [row["key"] for row in rows],
        {"estimated spend": [float(row["estimated_spend"]) for row in rows]},
    )


def opt_outs_by_day(start: date, days: list[date]) -> list[int]:
    """Opt-out consent events per day (UTC); few enough to count here."""
    since = datetime.combine(start, datetime.min.time())
    created = ConsentEvent.select(ConsentEvent.created_at).where(
        (ConsentEvent.action == "opt_out") & (ConsentEvent.created_at >= since)
    )
    counts = Counter(event.created_at.date() for event in created)
    return [counts.get(day, 0) for day in days]


def recent_failures(limit: int = RECENT_FAILURES) -> list[dict]:
    rows = (
        Message.select()
        .where(Message.state == State.FAILED)
        .order_by(Message.updated_at.desc(), Message.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": m.id,
            "at": m.failed_at or m.updated_at,
            "phone": mask(m.phone),
            "template": m.template_name or m.kind,
            "reason": m.reason or "",
            "error_code": m.error_code or "",
            "error_text": m.error_text or "",
        }
        for m in rows
    ]


def suppressions_by_reason(rows: list[dict]) -> list[tuple[str, int]]:
    total: Counter[str] = Counter()
    for row in rows:
        total.update(row.get("suppressed_by_reason") or {})
    return total.most_common()


def _each_day(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _rows_by_day(rows: list[dict]) -> dict[str, dict]:
    return {str(row["key"])[:10]: row for row in rows}


def _percent(rate: float | None) -> float | None:
    # None (nothing sent that day) leaves a gap in the line rather than a fake 0%.
    return None if rate is None else round(100 * rate, 1)


@bp.app_template_filter("percent")
def percent(rate: float | None) -> str:
    """0.8765 -> "87.7%"; a rate without a denominator -> "–"."""
    return "–" if rate is None else f"{100 * rate:.1f}%"
