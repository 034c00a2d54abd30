"""The docker/ deployment, checked statically (Docker cannot run here; the Celery test runs
the same topology without containers): the image, the services, and every variable the
compose file needs is documented in .env.example."""

from __future__ import annotations

import json
import os
import re
from importlib.metadata import version
from pathlib import Path

import yaml

DOCKER = Path(__file__).resolve().parents[1] / "docker"
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
        assert services[name]["image"] == "steppewatch-airflow:latest"
    assert "mc mb" in services["minio-init"]["entrypoint"]
    assert os.access(DOCKER / "postgres-init.sh", os.X_OK)


def test_every_variable_is_in_env_example_and_connections_parse() -> None:
    text = (DOCKER / "docker-compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used <= set(ENV_EXAMPLE), f"not in .env.example: {used - set(ENV_EXAMPLE)}"
    env = {k: v or "x" for k, v in ENV_EXAMPLE.items()}
    resolved = yaml.safe_load(substitute(text, env))["x-airflow-common"]["environment"]
    aws = json.loads(resolved["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["endpoint_url"] == "http://minio:9000" and aws["password"] == env["MINIO_ROOT_PASSWORD"]
    assert json.loads(resolved["AIRFLOW_CONN_SMTP_DEFAULT"])["host"] == "mailpit"
    assert resolved["AIRFLOW_VAR_STEPPEWATCH_STORE"] == f"s3://{env['STEPPEWATCH_BUCKET']}/news"
    assert resolved["AIRFLOW_VAR_STEPPEWATCH_INDEX_URL"].startswith("postgresql+psycopg://steppewatch:")
