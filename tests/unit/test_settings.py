"""The Scrapy settings a polite crawler needs are on by default."""

from __future__ import annotations

from steppewatch.config import DEFAULT_USER_AGENT, Config
from steppewatch.crawl import scrapy_settings


def test_politeness_defaults() -> None:
    s = scrapy_settings(Config())
    assert s["ROBOTSTXT_OBEY"] and s["ROBOTSTXT_PARSER"].endswith("ProtegoRobotParser")
    assert s["AUTOTHROTTLE_ENABLED"] and s["CONCURRENT_REQUESTS_PER_DOMAIN"] <= 2
    assert "(+https://" in s["USER_AGENT"] and s["USER_AGENT"] == DEFAULT_USER_AGENT
    assert 429 in s["RETRY_HTTP_CODES"] and s["RETRY_TIMES"] >= 2
    assert s["DOWNLOAD_MAXSIZE"] <= 20 * 1024 * 1024 and s["DOWNLOAD_TIMEOUT"] <= 60
    assert s["DOWNLOADER_MIDDLEWARES"]["scrapy.downloadermiddlewares.retry.RetryMiddleware"] is None


def test_user_agent_and_overrides_from_configuration() -> None:
    config = Config.from_env({"STEPPEWATCH_USER_AGENT": "ops-bot/2 (+https://ops.example/contact)",
                              "STEPPEWATCH_STORE": "/tmp/x"})
    s = scrapy_settings(config, {"DOWNLOAD_DELAY": 3})
    assert s["USER_AGENT"] == "ops-bot/2 (+https://ops.example/contact)"
    assert s["STORE_URI"] == "/tmp/x" and s["DOWNLOAD_DELAY"] == 3


def test_components_read_their_settings_without_fallbacks_from_one_module_of_defaults() -> None:
    """Defaults were written two or three times (a component's fallback beside the runner's
    dict): every project setting a component reads is defined once, in
    steppewatch/settings.py (or given by the configuration), and read without a fallback."""
    import ast
    from pathlib import Path

    from steppewatch import settings as defaults

    root = Path(__file__).resolve().parents[2]
    given = set(scrapy_settings(Config())) - {name for name in vars(defaults) if name.isupper()}
    assert given == {"USER_AGENT", "STORE_URI", "INDEX_URL", "FIXEDPROXY_URL"}
    getters = {"get", "getbool", "getint", "getfloat", "getlist", "getdict", "getwithbase"}
    fallbacks, undefined = [], []
    for top in ("spiders", "pipelines", "steppewatch"):
        for path in sorted((root / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in getters and node.args
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                        and isinstance(node.func.value, ast.Attribute | ast.Name)
                        and "settings" in ast.unparse(node.func.value)):
                    continue
                name = node.args[0].value
                where = f"{path.relative_to(root)}:{node.lineno} {name}"
                if len(node.args) > 1 or node.keywords:
                    fallbacks.append(where)
                if name.startswith(("NEWS_", "RETRY_BACKOFF_", "NETGUARD_", "STORE_", "DEDUP_", "PROGRESS_",
                                    "FIXEDPROXY_", "INDEX_", "LEDGER_")) and name not in vars(defaults) and name not in given:
                    undefined.append(where)
    assert fallbacks == [], "read without a fallback: the default belongs in steppewatch/settings.py"
    assert undefined == [], "define these in steppewatch/settings.py"
