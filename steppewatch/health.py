"""Site health: incidents (every source failing, no new articles for N runs, a jump in
the extraction rejection rate) and recoveries, one ops e-mail each.

``assess`` is a pure function of the previous state and one run's summary; the state
lives in the index database (``site_health``), so each incident mails once, however
many runs it lasts, and its end mails once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from steppewatch.alerts.mail import DEFAULT_FROM, Mailer
from steppewatch.db import metadata

site_health = sa.Table(
    "site_health", metadata,
    sa.Column("site", sa.String(64), primary_key=True),
    sa.Column("empty_runs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejection_rate", sa.Float),
    sa.Column("incident", sa.String(32)),
    sa.Column("detail", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("notified", sa.Text),  # JSON list: who was told of the open incident (migration 0012)
)

EMPTY_RUNS = 6  # the default of STEPPEWATCH_HEALTH_EMPTY_RUNS (``Config.health_empty_runs``)
MIN_FETCHED = 5  # a rejection rate of 2 pages out of 3 says nothing


@dataclass(frozen=True)
class Health:
    site: str
    empty_runs: int = 0
    rejection_rate: float | None = None  # moving average of recent runs
    incident: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Event:
    kind: str  # "incident" or "recovered"
    site: str
    incident: str
    detail: str


def assess(state: Health, run: dict[str, Any], empty_runs: int = EMPTY_RUNS) -> tuple[Health, Event | None]:
    fetched = run.get("fetched", 0)
    rejected = sum((run.get("rejected") or {}).values())
    empty = state.empty_runs + 1 if run.get("stored", 0) == 0 else 0
    rate = rejected / fetched if fetched >= MIN_FETCHED else None
    average = state.rejection_rate
    problem: tuple[str, str] | None = None
    if run.get("all_sources_failed"):
        failing = [f"{s['kind']} {s['url']}: {s.get('error') or s.get('status')}" for s in run.get("sources", [])]
        problem = ("sources_failing", "every source failed:\n" + "\n".join(failing))
    elif rate is not None and average is not None and rate >= 0.5 and rate > 2 * average + 0.1:
        problem = ("rejections_jump", f"{rejected} of {fetched} fetched pages rejected ({rate:.0%}; "
                                      f"usually {average:.0%}): {run.get('rejected')}")
    elif empty >= empty_runs:
        problem = ("no_new_articles", f"no new article in {empty} consecutive runs")
    if rate is not None:
        average = rate if average is None else 0.7 * average + 0.3 * rate
    new = replace(state, empty_runs=empty, rejection_rate=average)
    if problem and state.incident is None:
        return replace(new, incident=problem[0], detail=problem[1]), Event("incident", state.site, *problem)
    if problem:
        return replace(new, detail=problem[1]), None
    if state.incident is not None:
        return replace(new, incident=None, detail=None), Event("recovered", state.site, state.incident,
                                                               f"healthy again after: {state.detail}")
    return new, None


def check(index_url: str, run: dict[str, Any], recipients: list[str], mailer: Mailer,
          empty_runs: int = EMPTY_RUNS) -> dict[str, Any]:
    """Load, assess and store one site's health; mail ops on incident and recovery with ``mailer``."""
    from steppewatch.alerts.mail import build_message
    from steppewatch.index import Index

    index = Index(index_url)
    with index.engine.begin() as conn:
        table = site_health
        row = conn.execute(sa.select(table).where(table.c.site == run["site"])).first()
        state = Health(run["site"], row.empty_runs, row.rejection_rate, row.incident, row.detail) if row else \
            Health(run["site"])
        new, event = assess(state, run, empty_runs)
        told = set(json.loads(row.notified)) if row is not None and row.notified else set()
        # who hears of what: a new incident or a recovery goes to everyone configured (and, for a
        # recovery, everyone told of the incident); an incident still open goes to the addresses
        # added since it was told
        if event is not None and event.kind == "incident":
            mail_to, told_now = set(recipients), set(recipients)
        elif event is not None:
            mail_to, told_now = set(recipients) | told, set()
        elif new.incident is not None and set(recipients) - told:
            mail_to = set(recipients) - told
            event = Event("incident", new.site, new.incident, f"(still open) {new.detail}")
            told_now = told | mail_to
        else:
            mail_to, told_now = set(), told if new.incident is not None else set()
        values = {"empty_runs": new.empty_runs, "rejection_rate": new.rejection_rate, "incident": new.incident,
                  "detail": new.detail, "updated_at": datetime.now(UTC),
                  "notified": json.dumps(sorted(told_now)) if told_now else None}
        if row:
            conn.execute(table.update().where(table.c.site == run["site"]).values(**values))
        else:
            conn.execute(table.insert().values(site=run["site"], **values))
        if event and mail_to:
            # inside the transaction: if the mail fails, the state is not advanced and the next run retries
            subject = f"[steppewatch ops] {event.site}: {event.incident} {event.kind}"
            text = f"Site {event.site}: {event.incident} ({event.kind})\n\n{event.detail}\n\nrun {run.get('run_id')}"
            key = f"health/{event.site}/{event.incident}/{event.kind}/{run.get('run_id')}/{','.join(sorted(mail_to))}"
            mailer.send(build_message(subject, sorted(mail_to), text, "<pre>" + _escape(text) + "</pre>", key,
                                      getattr(mailer, "sender", DEFAULT_FROM)))
    return {"site": run["site"], "incident": new.incident, "event": event.kind if event else None}


def _escape(text: str) -> str:
    import html

    return html.escape(text)

