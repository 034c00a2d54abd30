"""The wheel: built offline from a copy of the checkout, it ships the registry, the alert rules
and the demo's sample sites, and an installed copy finds them away from any checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHES = shutil.ignore_patterns("*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis")


def _ignore(directory: str, names: list[str]) -> set[str]:
    """What a fresh clone would not hold: the venv, the data, builds and caches (steppewatch/data is kept)."""
    top = {".venv", "data", ".git", "build", "dist"} if Path(directory) == ROOT else set()
    return (top & set(names)) | CACHES(directory, names)


def _setuptools_builds_wheels() -> bool:
    major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)  # bdist_wheel without the separate `wheel` package


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _setuptools_builds_wheels():
        pytest.skip(f"setuptools {version('setuptools')} here cannot build a wheel offline: the test extra "
                    f"asks for setuptools>=70.1 (make install)")
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "src"
    shutil.copytree(ROOT, tree, symlinks=True, ignore=_ignore)  # the data links stay links, as in git
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "--quiet", "-w", str(tmp / "dist"), str(tree)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (built,) = (tmp / "dist").glob("steppewatch-*.whl")
    return built


def test_wheel_ships_registry_rules_and_demo_sites(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("steppewatch/data/config/sites.yaml", "steppewatch/data/config/alerts.yaml",
                 "steppewatch/data/demo/sites.yaml", "steppewatch/data/stopwords.txt", "steppewatch/pools.py",
                 "steppewatch/migrations/env.py", "spiders/news.py", "pipelines/extract.py"):
        assert name in names, name
    demo = {n.removeprefix("steppewatch/data/demo/") for n in names if n.startswith("steppewatch/data/demo/sites/")}
    fixtures = {str(p.relative_to(ROOT / "tests" / "fixtures").as_posix())
                for p in (ROOT / "tests" / "fixtures" / "sites").rglob("*") if p.is_file()}
    assert demo == fixtures, "every file the replay server serves to the demo"
    assert zipfile.ZipFile(wheel).read("steppewatch/data/config/sites.yaml") == (ROOT / "config" / "sites.yaml").read_bytes()
    assert not any(n.startswith(("tests/", "dags/", "config/")) for n in names)


def test_installed_wheel_finds_its_data_outside_a_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a wheel's purelib is its root
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "import steppewatch, steppewatch.cli as cli\n"
        "from steppewatch.registry import load_registry\n"
        "from steppewatch.alerts.rules import load_rules\n"
        "print(json.dumps({'package': steppewatch.__file__, 'sites': len(load_registry().sites),\n"
        "  'rules': len(load_rules().rules), 'demo_sites': [s.id for s in load_registry(cli.SAMPLES / 'sites.yaml').sites],\n"
        "  'demo_pages': (cli.SAMPLES / 'sites' / 'kazinfo.test').is_dir()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPPEWATCH_") and k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(str(site))
    assert found["sites"] > 40 and found["rules"] >= 1
    assert found["demo_sites"] == ["steppe_times", "kazinfo", "dala_news", "silkroad_review"]
    assert found["demo_pages"]
