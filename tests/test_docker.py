"""The docker/ deployment, checked statically (Docker cannot run here; the Celery test runs
the same topology without containers): the image, the services, every variable the
compose file needs is documented in .env.example, every image has a fixed tag, every
long-running Airflow service a healthcheck, the registry and the rules are mounted rather
than baked into the image, airflow-init creates the crawl pools, and .dockerignore keeps
the venv and the data out of the build context but nothing the image copies."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((DOCKER / "docker-compose.yaml").read_text())
ENV_EXAMPLE = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))


def substitute(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} against ``env``."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if op == ":-" and not value:
            return arg
        assert op != ":?" or value, f"{name}: {arg}"
        return value

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, text.replace("$$", "\0")).replace("\0", "$")


def test_image_is_the_official_airflow_of_the_pinned_version() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:(\S+)-python3\.11$", dockerfile, re.M)
    assert base, "FROM the official apache/airflow:<version>-python3.11 image"
    assert base.group(1).rsplit(".", 1)[0] == version("apache-airflow").rsplit(".", 1)[0] == "3.3"
    for source in re.findall(r"^COPY --chown=\S+ (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (DOCKER.parent / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_services_celery_topology() -> None:
    services = COMPOSE["services"]
    for name in ("postgres", "redis", "minio", "minio-init", "mailpit", "airflow-init", "airflow-apiserver",
                 "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert name in services, name
    workers = [n for n, s in services.items() if str(s.get("command", "")).startswith("celery worker")]
    assert len(workers) >= 2
    common = COMPOSE["x-airflow-common"]["environment"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
    assert "postgres/airflow" in common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    for name in [*workers, "airflow-scheduler", "airflow-apiserver"]:
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert services[name]["image"] == f"steppewatch-airflow:{project}"
    assert "mc mb" in services["minio-init"]["entrypoint"]
    assert os.access(DOCKER / "postgres-init.sh", os.X_OK)


def test_every_variable_is_in_env_example_and_connections_parse() -> None:
    text = (DOCKER / "docker-compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))  # $${X} is the container's variable
    assert used <= set(ENV_EXAMPLE), f"not in .env.example: {used - set(ENV_EXAMPLE)}"
    env = {k: v or "x" for k, v in ENV_EXAMPLE.items()}
    resolved = yaml.safe_load(substitute(text, env))["x-airflow-common"]["environment"]
    aws = json.loads(resolved["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["endpoint_url"] == "http://minio:9000" and aws["password"] == env["MINIO_ROOT_PASSWORD"]
    assert json.loads(resolved["AIRFLOW_CONN_SMTP_DEFAULT"])["host"] == "mailpit"
    assert resolved["AIRFLOW_VAR_STEPPEWATCH_STORE"] == f"s3://{env['STEPPEWATCH_BUCKET']}/news"
    assert resolved["AIRFLOW_VAR_STEPPEWATCH_INDEX_URL"].startswith("postgresql+psycopg://steppewatch:")


def test_every_image_has_a_fixed_tag() -> None:
    base = re.search(r"^FROM (\S+)$", DOCKERFILE, re.M).group(1)
    images = {"Dockerfile": base} | {name: service["image"] for name, service in COMPOSE["services"].items()}
    assert COMPOSE["x-airflow-common"]["image"] == images["airflow-scheduler"]
    for name, image in images.items():
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not a fixed version"
        # a release, not a moving major.minor line: x.y.z, or PostgreSQL's x.y, or MinIO's RELEASE.<date>
        assert re.fullmatch(r"v?\d+\.\d+\.\d+(-[\w.]+)?|RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z", tag) or (
            image.startswith("postgres:") and re.fullmatch(r"\d+\.\d+(-\w+)?", tag)), f"{name}: {image}"


def test_long_running_airflow_services_have_healthchecks() -> None:
    services = COMPOSE["services"]
    checks = {name: " ".join(s["healthcheck"]["test"]) for name, s in services.items() if "healthcheck" in s}
    assert "/api/v2/version" in checks["airflow-apiserver"]
    assert "localhost:8974/health" in checks["airflow-scheduler"]
    assert services["airflow-scheduler"].get("environment", COMPOSE["x-airflow-common"]["environment"])[
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert 'airflow jobs check --job-type DagProcessorJob --hostname "$${HOSTNAME}"' in checks["airflow-dag-processor"]
    assert 'airflow jobs check --job-type TriggererJob --hostname "$${HOSTNAME}"' in checks["airflow-triggerer"]
    workers = [n for n, s in services.items() if str(s.get("command", "")).startswith("celery worker")]
    for name in workers:
        node = re.search(r"--celery-hostname (\S+)@%h", services[name]["command"]).group(1)
        assert (f"celery --app airflow.providers.celery.executors.celery_executor.app inspect ping "
                f'-d "{node}@$${{HOSTNAME}}"') in checks[name], name  # its own node, not celery@
    for name in ("postgres", "redis", "minio", *[n for n in services if n.startswith("airflow-") and n != "airflow-init"]):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 5, name


def test_registry_and_rules_are_mounted_not_baked() -> None:
    common = COMPOSE["x-airflow-common"]
    env = common["environment"]
    volumes = [substitute(v, {}).split(":") for v in common["volumes"]]  # the defaults of .env.example
    mounts = [v for v in volumes if v[1] == "/etc/steppewatch"]
    assert len(mounts) == 1 and mounts[0][2] == "ro", common["volumes"]
    source = mounts[0][0]
    assert source == ENV_EXAMPLE["STEPPEWATCH_CONFIG_DIR"]
    assert (DOCKER / source).resolve() == ROOT / "config"
    assert env["STEPPEWATCH_SITES"] == "/etc/steppewatch/sites.yaml" and (ROOT / "config" / "sites.yaml").exists()
    assert env["STEPPEWATCH_ALERTS"] == "/etc/steppewatch/alerts.yaml" and (ROOT / "config" / "alerts.yaml").exists()
    for name, service in COMPOSE["services"].items():
        if name.startswith("airflow-"):  # each takes the common volumes and environment
            assert service.get("volumes", common["volumes"]) == common["volumes"], name
            assert service["environment"]["STEPPEWATCH_SITES"] == env["STEPPEWATCH_SITES"], name
    assert not re.search(r"^ENV\b[^\n]*STEPPEWATCH_(SITES|ALERTS)", DOCKERFILE, re.M), "no baked-in registry path"
    assert "STEPPEWATCH_CONFIG_DIR" in ENV_EXAMPLE


def test_airflow_init_creates_the_crawl_pools() -> None:
    init = COMPOSE["services"]["airflow-init"]
    assert init["command"] == "python -m steppewatch.pools --apply"
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    for name, service in COMPOSE["services"].items():
        if name.startswith("airflow-") and name != "airflow-init":
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` (or a directory holding it) out of the build context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def test_dockerignore_keeps_out_venv_data_and_caches_but_nothing_copied() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns)
    for path in (".venv/bin/python", ".git/HEAD", "data/store/x.json", "data/index.sqlite", "docker/.env",
                 "steppewatch/__pycache__/cli.cpython-311.pyc", ".pytest_cache/v", ".ruff_cache/x", ".hypothesis/x",
                 "steppewatch.egg-info/PKG-INFO", "build/lib/x.py", "dist/x.whl", "kazinfo.jsonl"):
        assert _ignored(path, patterns), path
    copied = [src for line in re.findall(r"^COPY --chown=\S+ (.+) \S+$", DOCKERFILE, re.M) for src in line.split()]
    assert "config" in copied and "tests/fixtures/sites" in copied
    for source in copied:
        top = ROOT / source
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        for file in files:
            assert not _ignored(file.relative_to(ROOT).as_posix(), patterns), file
