"""``steppewatch status``: what an operator checks first — each site's last run, open
incidents, alerts waiting to go out and when each digest is next due. Reads only."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from steppewatch.alerts.outbox import alert_outbox
from steppewatch.health import site_health
from steppewatch.index import Index
from steppewatch.store import Store

MAX_MANIFESTS = 500  # the newest ones: enough to find every site's last run


def last_runs(store: Store, sites: list[str]) -> dict[str, dict[str, Any]]:
    """site -> its newest run manifest's id, window and counts (run ids sort by start time)."""
    found: dict[str, dict[str, Any]] = {}
    for key in sorted(store.list("runs/"), reverse=True)[:MAX_MANIFESTS]:
        if len(found) == len(sites):
            break
        try:
            manifest = json.loads(store.get(key))
        except (OSError, ValueError):
            continue
        for site in manifest.get("sites") or []:
            if site in sites and site not in found:
                counts = (manifest.get("counts") or {}).get(site, {})
                found[site] = {"run_id": manifest.get("run_id"), "finished": manifest.get("finished"),
                               "since": manifest.get("since"), "until": manifest.get("until"),
                               "stored": counts.get("stored", 0), "fetched": counts.get("fetched", 0)}
    return found


def status(index: Index, store: Store, sites: list[str], rules: Any, now: datetime | None = None) -> dict[str, Any]:
    from steppewatch.alerts.schedule import next_due

    now = now or datetime.now(UTC)
    with index.reading() as conn:
        incidents = [{"site": r.site, "incident": r.incident, "detail": r.detail,
                      "since": r.updated_at.isoformat() if r.updated_at else None}
                     for r in conn.execute(sa.select(site_health).where(site_health.c.incident.is_not(None))
                                           .order_by(site_health.c.site))]
        waiting = Counter((r.rule, r.mode, r.status) for r in conn.execute(
            sa.select(alert_outbox.c.rule, alert_outbox.c.mode, alert_outbox.c.status)
            .where(alert_outbox.c.status.in_(("pending", "sending", "held", "collecting")))))
    digests = []
    for compiled in rules.rules if rules is not None else []:
        rule = compiled.rule
        if rule.mode == "digest" and rule.schedule:
            digests.append({"rule": rule.name, "schedule": rule.schedule, "timezone": rule.timezone,
                            "next_due": next_due(rule.schedule, rule.timezone, now).isoformat()})
    return {
        "now": now.isoformat(),
        "sites": last_runs(store, sites),
        "incidents": incidents,
        "alerts_waiting": [{"rule": rule, "mode": mode, "status": st, "count": n}
                           for (rule, mode, st), n in sorted(waiting.items())],
        "digests": digests,
    }


def render(report: dict[str, Any], sites: list[str]) -> str:
    lines = [f"status at {report['now']}", "", "last run per site:"]
    for site in sites:
        run = report["sites"].get(site)
        lines.append(f"  {site:<24} " + (f"{run['finished'] or '?'}  stored {run['stored']}, fetched {run['fetched']}"
                                         f"  ({run['run_id']})" if run else "no run in the store"))
    lines += ["", f"open incidents: {len(report['incidents'])}"]
    lines += [f"  {i['site']}: {i['incident']} since {i['since']}: {(i['detail'] or '').splitlines()[0][:160]}"
              for i in report["incidents"]]
    lines += ["", "alerts waiting:" if report["alerts_waiting"] else "alerts waiting: none"]
    lines += [f"  {a['rule']} ({a['mode']}): {a['count']} {a['status']}" for a in report["alerts_waiting"]]
    if report["digests"]:
        lines += ["", "digests next due:"]
        lines += [f"  {d['rule']}: {d['next_due']} ({d['schedule']} {d['timezone']})" for d in report["digests"]]
    return "\n".join(lines)
