"""Configuration from the environment, with embedded defaults for one machine.

No configuration file is needed to try steppewatch: the store is ``./data/store``,
the index ``data/index.sqlite``, the registry ``config/sites.yaml``. Each value is an environment variable so that
Airflow, Docker and the CLI configure it the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from steppewatch import __version__
from steppewatch.registry import project_default

DEFAULT_USER_AGENT = f"steppewatch/{__version__} (+https://github.com/steppewatch/steppewatch)"


@dataclass(frozen=True)
class Config:
    store: str = "data/store"
    index: str = "sqlite:///data/index.sqlite"
    sites: str = "config/sites.yaml"
    user_agent: str = DEFAULT_USER_AGENT
    proxy: str | None = None
    scrapy: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        return cls(
            store=env.get("STEPPEWATCH_STORE") or cls.store,
            index=env.get("STEPPEWATCH_INDEX_URL") or cls.index,
            sites=env.get("STEPPEWATCH_SITES") or str(project_default(Path(cls.sites))),
            user_agent=env.get("STEPPEWATCH_USER_AGENT") or DEFAULT_USER_AGENT,
            proxy=env.get("STEPPEWATCH_PROXY") or None,
            scrapy=_json_settings(env.get("STEPPEWATCH_SCRAPY_SETTINGS")),
        )


def _json_settings(raw: str | None) -> dict[str, str]:
    """Scrapy setting overrides as a JSON object (e.g. for a deployment's politeness)."""
    if not raw:
        return {}
    import json

    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"STEPPEWATCH_SCRAPY_SETTINGS is not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("STEPPEWATCH_SCRAPY_SETTINGS must be a JSON object")
    return value
