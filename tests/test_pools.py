"""Crawl pools (steppewatch/pools.py): every task that crawls runs in its site's domain pool,
sites sharing a host share it, scheduled and backfill tasks of one site share it, and the
definitions that deployments import hold every pool with one slot."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from steppewatch.pools import POOL_SLOTS, pool_definitions, pool_for, pool_task_id, site_pools, split_by_pool
from steppewatch.registry import Registry, Site, load_registry

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "false"
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag


def crawls(task) -> bool:  # noqa: ANN001
    """Whether a task calls steppewatch.airflow_tasks.crawl_window (imported inside its callable)."""
    return "crawl_window" in task.python_callable.__code__.co_names


def test_every_crawl_task_runs_in_its_sites_domain_pool(dagbag) -> None:  # noqa: ANN001
    registry = load_registry()
    pools = site_pools(registry)
    definitions = pool_definitions(registry)
    crawl_tasks = [(dag_id, t) for dag_id, dag in dagbag.dags.items() for t in dag.tasks if crawls(t)]
    assert len(crawl_tasks) == len(registry.enabled()) + len(definitions)  # one per site DAG, one per pool
    for dag_id, task in crawl_tasks:
        assert task.pool in definitions, (dag_id, task.task_id, task.pool)
        assert task.pool_slots == 1
    for site in registry.enabled():
        assert dagbag.dags[f"steppewatch_{site.id}"].get_task("crawl_window").pool == pools[site.id]
    backfill = dagbag.dags["steppewatch_backfill"]
    for pool in definitions:
        task = backfill.get_task(f"crawl_day.{pool_task_id(pool)}")
        assert task.is_mapped and task.pool == pool
        assert task.upstream_task_ids == {f"crawl_day.days_{pool_task_id(pool)}"}


def test_sites_sharing_a_host_share_a_pool_and_pools_hold_one_slot() -> None:
    registry = load_registry()
    pools = site_pools(registry)
    assert set(pools) == {s.id for s in registry.sites}
    for a, b in itertools.combinations(registry.sites, 2):
        if set(a.allowed_domains) & set(b.allowed_domains):
            assert pools[a.id] == pools[b.id], (a.id, b.id)
    shared = {p for p in pools.values() if list(pools.values()).count(p) > 1}
    assert {"steppewatch_crawl_kun.uz", "steppewatch_crawl_gazeta.uz", "steppewatch_crawl_24.kg",
            "steppewatch_crawl_tengrinews.kz"} <= shared
    assert pools["tengrinews_en"] == pools["tengrinews_kk"] == "steppewatch_crawl_tengrinews.kz"
    assert pools["inform_kz"] != pools["inform_kz_kk"]  # another host, another Scrapy download slot
    definitions = pool_definitions(registry)
    assert set(definitions) == set(pools.values())
    assert all(d["slots"] == POOL_SLOTS == 1 and d["include_deferred"] is False for d in definitions.values())
    for site_id, pool in pools.items():
        assert site_id in definitions[pool]["description"]
    assert len({pool_task_id(p) for p in definitions}) == len(definitions)
    assert pool_for("kun_uz_en", registry) == "steppewatch_crawl_kun.uz"


def _site(site_id: str, *domains: str) -> Site:
    return Site(id=site_id, name=site_id, country="KZ", languages=["ru"], allowed_domains=list(domains),
                feeds=[{"url": f"https://{domains[0]}/rss"}])


def test_groups_join_transitively_and_items_go_to_their_pool() -> None:
    registry = Registry(sites=[_site("a", "a.kz"), _site("b", "b.kz", "a.kz"), _site("c", "c.kz", "b.kz"),
                               _site("d", "d.kz")])
    pools = site_pools(registry)
    assert pools["a"] == pools["b"] == pools["c"] != pools["d"]
    assert pools["a"] in ("steppewatch_crawl_a.kz", "steppewatch_crawl_b.kz")  # the most shared host
    split = split_by_pool([{"site": "c", "day": "2024-12-01"}, {"site": "d", "day": "2024-12-01"}], registry)
    assert split == {pools["a"]: [{"site": "c", "day": "2024-12-01"}], pools["d"]: [{"site": "d", "day": "2024-12-01"}]}


def test_an_item_of_an_unknown_site_is_refused_by_name() -> None:
    registry = Registry(sites=[_site("a", "a.kz")], path="sites.yaml")
    with pytest.raises(ValueError, match="'b' is not in the registry the DAGs were parsed with"):
        split_by_pool([{"site": "b", "day": "2024-12-01"}], registry)
