"""The one configuration: every setting steppewatch reads from the environment, typed.

No configuration file is needed to try steppewatch: the store is ``./data/store``, the index
``data/index.sqlite``, the registry ``config/sites.yaml``. Each value is an environment
variable so that Airflow, Docker and the CLI configure it the same way. The environment is
read here and only here (and in the Airflow glue, which turns Variables and connections into
this environment): the CLI builds one ``Config`` inside its error handling, so a malformed
value is a one-line error naming the variable (exit 2, never a traceback, never a password),
and passes it, or the values in it, to whatever needs them. ``to_env`` hands the same
configuration to a subprocess.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from steppewatch import __version__
from steppewatch.alerts.mail import DEFAULT_FROM, SMTPMailer
from steppewatch.errors import ConfigError
from steppewatch.redaction import quoted, redact
from steppewatch.registry import DEFAULT_SITES_PATH, project_default

DEFAULT_USER_AGENT = f"steppewatch/{__version__} (+https://github.com/steppewatch/steppewatch)"
DEFAULT_ALERTS_PATH = Path("config/alerts.yaml")
DEFAULT_EMPTY_RUNS = 6
DEFAULT_INDEX = "sqlite:///data/index.sqlite"

# field -> environment variable; the README's configuration table lists the same
VARIABLES: dict[str, str] = {
    "store": "STEPPEWATCH_STORE",
    "index": "STEPPEWATCH_INDEX_URL",
    "sites": "STEPPEWATCH_SITES",
    "alerts": "STEPPEWATCH_ALERTS",
    "smtp_url": "STEPPEWATCH_SMTP_URL",
    "outbox_dir": "STEPPEWATCH_OUTBOX_DIR",
    "mail_from": "STEPPEWATCH_MAIL_FROM",
    "ops_recipients": "STEPPEWATCH_OPS_RECIPIENTS",
    "health_empty_runs": "STEPPEWATCH_HEALTH_EMPTY_RUNS",
    "user_agent": "STEPPEWATCH_USER_AGENT",
    "proxy": "STEPPEWATCH_PROXY",
    "scrapy": "STEPPEWATCH_SCRAPY_SETTINGS",
    "airflow_port": "STEPPEWATCH_AIRFLOW_PORT",
}


@dataclass(frozen=True)
class Config:
    store: str = "data/store"
    # URLs that may hold a password are kept out of repr (``redact`` them for a message)
    index: str = field(default=DEFAULT_INDEX, repr=False)
    sites: str = "config/sites.yaml"
    alerts: str = str(DEFAULT_ALERTS_PATH)
    smtp_url: str | None = field(default=None, repr=False)  # None: .eml files under outbox_dir
    outbox_dir: str = "data/outbox"
    mail_from: str = DEFAULT_FROM
    ops_recipients: tuple[str, ...] = ()
    health_empty_runs: int = DEFAULT_EMPTY_RUNS
    user_agent: str = DEFAULT_USER_AGENT
    proxy: str | None = field(default=None, repr=False)
    scrapy: dict[str, Any] = field(default_factory=dict)
    airflow_port: int = 8080
    # the fields the environment set (the demo uses its own store and index unless told)
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """The configuration from ``env`` (the process environment by default).

        Raises ConfigError naming the variable, with any URL redacted, for a value that
        cannot be used.
        """
        env = os.environ if env is None else env
        raw = {name: env.get(var) or None for name, var in VARIABLES.items()}
        given = frozenset(name for name, value in raw.items() if value is not None)
        smtp_url = raw["smtp_url"]
        if smtp_url is not None:
            SMTPMailer.from_url(smtp_url)  # raises ConfigError naming STEPPEWATCH_SMTP_URL, redacted
        if raw["store"] is not None and raw["store"].startswith("s3:"):
            _url(raw["store"], "store", ("s3",))
        if raw["index"] is not None:
            _url(raw["index"], "index", None, need_host=False)  # sqlite:///path has none
        if raw["proxy"] is not None:
            _url(raw["proxy"], "proxy", ("http", "https"))
        return cls(
            store=raw["store"] or cls.store,
            index=raw["index"] or DEFAULT_INDEX,
            sites=raw["sites"] or str(project_default(DEFAULT_SITES_PATH)),
            alerts=raw["alerts"] or str(project_default(DEFAULT_ALERTS_PATH)),
            smtp_url=smtp_url,
            outbox_dir=raw["outbox_dir"] or cls.outbox_dir,
            mail_from=raw["mail_from"] or cls.mail_from,
            ops_recipients=tuple(r.strip() for r in (raw["ops_recipients"] or "").split(",") if r.strip()),
            health_empty_runs=_positive_int(raw["health_empty_runs"], "health_empty_runs", DEFAULT_EMPTY_RUNS),
            user_agent=raw["user_agent"] or DEFAULT_USER_AGENT,
            proxy=raw["proxy"],
            scrapy=_json_settings(raw["scrapy"]),
            airflow_port=_positive_int(raw["airflow_port"], "airflow_port", 8080),
            given=given,
        )

    def to_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a steppewatch subprocess that is to see this configuration:
        ``base`` (this process's environment by default) with every setting written out."""
        env = dict(os.environ if base is None else base)
        for f in fields(self):
            var = VARIABLES.get(f.name)
            if var is None:
                continue
            value = getattr(self, f.name)
            if value is None or value == () or value == {}:
                env.pop(var, None)
            elif f.name == "scrapy":
                env[var] = json.dumps(value, default=str)
            elif f.name == "ops_recipients":
                env[var] = ",".join(value)
            else:
                env[var] = str(value)
        return env


def _url(raw: str, name: str, schemes: tuple[str, ...] | None, need_host: bool = True) -> None:
    """Raise ConfigError (the URL redacted) unless ``raw`` is a URL of one of ``schemes`` (any
    when None) with a host, when ``need_host``, and a numeric port if it has one. A check of
    the form only: whether the service answers is for the command that uses it (exit 3)."""
    parts = urlsplit(quoted(raw))
    problem = None
    if not parts.scheme or "://" not in raw:
        problem = "has no scheme://"
    elif schemes is not None and parts.scheme.lower() not in schemes:
        problem = f"must be {' or '.join(f'{s}://' for s in schemes)}"
    elif need_host and not parts.hostname:
        problem = "has no bucket" if schemes == ("s3",) else "has no host"
    else:
        try:
            parts.port  # noqa: B018 — parsing it is the check
        except ValueError:
            problem = "has a port that is not a number"
    if problem:
        raise ConfigError(f"{VARIABLES[name]} {problem}: {redact(raw)!r}")


def _positive_int(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{VARIABLES[name]} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{VARIABLES[name]} must be at least 1, got {value}")
    return value


def _json_settings(raw: str | None) -> dict[str, Any]:
    """Scrapy setting overrides as a JSON object (e.g. for a deployment's politeness)."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"STEPPEWATCH_SCRAPY_SETTINGS is not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"STEPPEWATCH_SCRAPY_SETTINGS must be a JSON object, got {type(value).__name__}")
    return value


def boto3_s3_endpoint() -> str | None:
    """The S3 endpoint boto3 reads from the environment itself (``AWS_ENDPOINT_URL_S3``, else
    ``AWS_ENDPOINT_URL``), read here as boto3 reads it whenever a client is made: a store's
    identity names the service the client connects to."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
