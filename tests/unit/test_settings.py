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
