"""Retry-After parsing and the backoff schedule."""

from __future__ import annotations

from datetime import UTC, datetime

from scrapy.http import HtmlResponse, Request
from scrapy.settings import Settings

from spiders.middlewares import BackoffRetryMiddleware, retry_after_seconds


def test_retry_after_forms() -> None:
    now = datetime(2024, 12, 3, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds("Tue, 03 Dec 2024 10:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Tue, 03 Dec 2024 09:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_backoff_doubles_and_honours_retry_after_up_to_the_cap() -> None:
    mw = BackoffRetryMiddleware(Settings({"RETRY_ENABLED": True, "RETRY_TIMES": 3, "RETRY_HTTP_CODES": [429, 503],
                                          "RETRY_BACKOFF_BASE": 0.5, "RETRY_BACKOFF_MAX": 10}))
    req = Request("http://s.test/a")
    assert mw.delay_for(req, None) == 0.5
    assert mw.delay_for(req.replace(meta={"retry_times": 2}), None) == 2.0
    assert mw.delay_for(req.replace(meta={"retry_times": 9}), None) == 10
    resp = HtmlResponse("http://s.test/a", status=429, headers={"Retry-After": "3"})
    assert mw.delay_for(req, resp) == 3.0
    resp = HtmlResponse("http://s.test/a", status=429, headers={"Retry-After": "3600"})
    assert mw.delay_for(req, resp) is None
