"""Airflow pools that keep one crawl per domain at a time, across every DAG and run.

Scrapy's "2 requests at a time per domain" holds inside one crawl process only. Several
site DAGs crawl the same domain (the editions of kun.uz, gazeta.uz, 24.kg …, often on the
same minute), and a scheduled run, an ``airflow backfill create`` run and the backfill
DAG can crawl one site at once. Airflow pools are the one limit the scheduler applies
across DAGs, so every crawl task runs in the pool of its site's domain group, which has
one slot.

Sites that list the same host in ``allowed_domains`` form one group (transitively, so a
site reaching two groups' hosts joins them); a subdomain is another host, as it is
another download slot for Scrapy. A group's pool is named after the host most of its
sites share. The pools must exist before a crawl task can be scheduled: ``python -m
steppewatch.pools --apply`` (run by ``steppewatch airflow`` and by docker's airflow-init)
imports them with ``airflow pools import``; run it again after adding a site.

Light to import (the registry only): the DAG files name their tasks' pools with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from steppewatch.registry import Registry, Site, load_registry

POOL_PREFIX = "steppewatch_crawl_"
POOL_SLOTS = 1


def _groups(sites: Iterable[Site]) -> list[list[Site]]:
    """The sites joined by shared ``allowed_domains`` hosts (union-find over hosts)."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    sites = list(sites)
    for site in sites:
        hosts = [d.lower() for d in site.allowed_domains]
        for host in hosts[1:]:
            parent[find(host)] = find(hosts[0])
    groups: dict[str, list[Site]] = {}
    for site in sites:
        groups.setdefault(find(site.allowed_domains[0].lower()), []).append(site)
    return list(groups.values())


def _pool_name(group: Sequence[Site]) -> str:
    counts = Counter(d.lower() for site in group for d in site.allowed_domains)
    host = min(counts, key=lambda h: (-counts[h], len(h), h))
    return POOL_PREFIX + host


def site_pools(registry: Registry | None = None) -> dict[str, str]:
    """Every registry site (enabled or not: the backfill DAG may crawl any) → its pool's name."""
    registry = registry or load_registry()
    return {site.id: _pool_name(group) for group in _groups(registry.sites) for site in group}


def pool_for(site_id: str, registry: Registry | None = None) -> str:
    """The pool of one site's crawl tasks; an unknown id is the registry's error."""
    registry = registry or load_registry()
    registry.get(site_id)
    return site_pools(registry)[site_id]


def pool_task_id(pool: str) -> str:
    """A task id for a pool's tasks: its host with dots as underscores (no host has one, so
    no two pools share an id)."""
    return pool.removeprefix(POOL_PREFIX).replace(".", "_")


def pool_definitions(registry: Registry | None = None) -> dict[str, dict[str, Any]]:
    """The pools in ``airflow pools import``'s format: one slot each, sites named."""
    registry = registry or load_registry()
    members: dict[str, list[str]] = {}
    for site_id, pool in site_pools(registry).items():
        members.setdefault(pool, []).append(site_id)
    return {pool: {"slots": POOL_SLOTS, "include_deferred": False,
                   "description": f"steppewatch: one crawl at a time for {', '.join(sorted(sites))}"}
            for pool, sites in sorted(members.items())}


def split_by_pool(items: Iterable[dict[str, str]], registry: Registry | None = None) -> dict[str, list[dict[str, str]]]:
    """Backfill items ({"site", "day"}) under their sites' pools; every pool is a key, most
    with no item, so that the backfill DAG's per-pool tasks each find their list."""
    pools = site_pools(registry)
    out: dict[str, list[dict[str, str]]] = {pool: [] for pool in sorted(set(pools.values()))}
    for item in items:
        if item["site"] not in pools:
            raise ValueError(f"site {item['site']!r} is not in the registry the DAGs were parsed with "
                             f"({(registry or load_registry()).path}): no crawl pool for it")
        out[pools[item["site"]]].append(item)
    return out


def apply(definitions: dict[str, dict[str, Any]], env: dict[str, str] | None = None) -> None:
    """Create or update the pools in Airflow's metadata database (``airflow pools import``).

    Pools of sites since removed from the registry are left alone: a running task may hold one.
    """
    beside = Path(sys.executable).parent / "airflow"  # this environment's Airflow, as `steppewatch airflow` runs
    airflow = str(beside) if beside.exists() else shutil.which("airflow", path=env.get("PATH") if env else None)
    if airflow is None:
        raise RuntimeError("airflow is not installed here: pip install -e '.[airflow]'")
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="steppewatch-pools-", delete=False) as f:
        json.dump(definitions, f, indent=1)
    try:
        out = subprocess.run([airflow, "pools", "import", f.name], env=env, capture_output=True, text=True,
                             timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"airflow pools import exited {out.returncode}: {out.stderr.strip()[-2000:]}")
    finally:
        os.unlink(f.name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steppewatch.pools", description=__doc__.split("\n")[0])
    parser.add_argument("--registry", help="registry file (default: the steppewatch_sites Variable, "
                                           "else STEPPEWATCH_SITES, else config/sites.yaml)")
    parser.add_argument("--apply", action="store_true", help="create or update the pools with airflow pools import")
    args = parser.parse_args(argv)
    from steppewatch.airflow_tasks import registry_path

    # the registry the DAG files and their tasks read (the Variable, else STEPPEWATCH_SITES)
    definitions = pool_definitions(load_registry(args.registry or registry_path()))
    if args.apply:
        apply(definitions)
        print(f"{len(definitions)} crawl pools of {POOL_SLOTS} slot set in Airflow")
    else:
        print(json.dumps(definitions, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
