"""The import graph of the project's own modules: every arrow points down its layers, and no
module uses another's private names.

A module's layer says what it may know about: the base (dates, URLs, models, the registry,
mail transport) knows nothing of storage; storage knows nothing of the crawl; the crawl's
components know nothing of the runners and entry points that start them. An arrow upward
(``pipelines`` calling into the spider, storage importing the crawl) is how a module stops
doing one job. A new module is placed here, in the layer its job belongs to.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("steppewatch", "spiders", "pipelines")

# lowest first; a module may import from its own layer and the layers below
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"steppewatch", "spiders", "pipelines", "steppewatch.alerts", "steppewatch.migrations",
              "steppewatch.migrations.versions", "steppewatch.errors", "steppewatch.models", "steppewatch.dates",
              "steppewatch.encoding", "steppewatch.urls", "steppewatch.redaction", "steppewatch.netguard",
              "steppewatch.windows", "steppewatch.layout", "steppewatch.relay", "steppewatch.replay", "steppewatch.settings",
              "steppewatch.registry", "steppewatch.alerts.schedule", "steppewatch.alerts.aliases",
              "steppewatch.alerts.morph", "steppewatch.alerts.query", "steppewatch.alerts.mail"}),
    ("run ledger", {"steppewatch.ledger", "steppewatch.progress"}),
    ("configuration, storage primitives, extraction", {
        "steppewatch.config", "steppewatch.db", "steppewatch.store", "steppewatch.records", "steppewatch.dedup",
        "steppewatch.alerts.rules", "pipelines.boilerplate", "pipelines.extract"}),
    ("index", {"steppewatch.index"}),
    ("outbox and health", {"steppewatch.alerts.outbox", "steppewatch.health"}),
    ("archive", {"steppewatch.archive", "steppewatch.crawl_archive"}),
    ("item pipelines and downloader middlewares", {"pipelines.items", "spiders.middlewares", "spiders.resolver"}),
    ("spider", {"spiders.discovery", "spiders.news"}),
    ("runners", {"steppewatch.crawl", "steppewatch.probe", "steppewatch.maintenance", "steppewatch.status"}),
    ("entry points", {"steppewatch.cli", "steppewatch.airflow_tasks", "steppewatch.airflow_local",
                      "steppewatch.pools", "steppewatch.migrations.env"}),
]


def modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (at any depth of the file: a lazy import is an arrow too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {name for name in out if name in known}


def layer_of() -> dict[str, int]:
    return {module: n for n, (_, members) in enumerate(LAYERS) for module in members}


def test_every_module_has_a_layer() -> None:
    placed = layer_of()
    unplaced = sorted(name for name in modules() if name not in placed
                      and not name.startswith("steppewatch.migrations.versions."))
    assert unplaced == [], f"place these modules in tests/unit/test_architecture.py's LAYERS: {unplaced}"


def test_no_import_points_up_the_layers() -> None:
    known, placed = modules(), layer_of()
    upward = []
    for name, path in sorted(known.items()):
        mine = placed.get(name, 0)
        for target in sorted(imports(path, known)):
            if placed.get(target, 0) > mine:
                upward.append(f"{name} ({LAYERS[mine][0]}) imports {target} ({LAYERS[placed[target]][0]})")
    assert upward == []


def test_no_module_uses_another_modules_private_names() -> None:
    known = modules()
    found = []
    for top in (*PACKAGES, "dags", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"))
            names: set[str] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}")
                        if f"{node.module}.{alias.name}" in known:
                            names.add(alias.asname or alias.name)
                elif isinstance(node, ast.Import):
                    names.update((a.asname or a.name.split(".")[0]) for a in node.names
                                 if a.name.split(".")[0] in PACKAGES)
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names \
                        and node.attr.startswith("_") and not node.attr.startswith("__"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert found == []


def test_the_checks_see_the_arrows_they_are_meant_to_see(tmp_path: Path) -> None:
    """The graph is read from the sources: an import of the crawl from storage is an arrow up."""
    known = modules()
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from steppewatch.crawl import run_crawl\n")
    assert imports(probe, known) == {"steppewatch.crawl"}
    assert layer_of()["steppewatch.crawl"] > layer_of()["steppewatch.store"]
