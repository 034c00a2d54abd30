"""A subprocess's stderr relayed line by line at the level each line was logged at."""

from __future__ import annotations

import logging
import sys

import pytest

from steppewatch.relay import line_level, run_relayed

CHILD = r'''
import sys, json
err = sys.stderr
print("2026-12-03 10:00:00 [scrapy.core.engine] INFO: Spider opened", file=err, flush=True)
print("2026-12-03 10:00:01 [news_kazinfo] WARNING: source http://kazinfo.test/feed.xml failed: dns", file=err)
print("2026-12-03 10:00:02 [scrapy.core.scraper] ERROR: Spider error processing <GET http://x.test/>", file=err)
print("Traceback (most recent call last):", file=err)
print('  File "x.py", line 1, in <module>', file=err)
print("2026-12-03 10:00:03 [scrapy.statscollectors] INFO: Dumping Scrapy stats:", file=err)
print("{'downloader/request_count': 3,", file=err)
print("steppewatch: warning: --query: 'or' is searched as a word", file=err)
print("steppewatch: error: 2 articles could not be stored", file=err)
sys.stdout.write(json.dumps({"big": "x" * 300000}))  # more than a pipe holds
sys.exit(int(sys.argv[1]))
'''


def test_each_line_is_logged_as_it_comes_at_its_own_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("steppewatch.test_relay")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        done = run_relayed([sys.executable, "-c", CHILD, "4"], None, logger)
    assert done.returncode == 4
    assert len(done.stdout) > 300000 and done.stdout.startswith('{"big"')
    levels = [(r.levelname, r.getMessage().split(" [")[-1][:24]) for r in caplog.records]
    assert [level for level, _ in levels] == ["INFO", "WARNING", "ERROR", "ERROR", "ERROR", "INFO", "INFO",
                                              "WARNING", "ERROR"], levels
    assert done.stderr_tail.endswith("steppewatch: error: 2 articles could not be stored")


def test_line_levels() -> None:
    assert line_level("2026-12-03 10:00:00 [scrapy.core.engine] DEBUG: Crawled (200)", logging.INFO) == logging.DEBUG
    assert line_level("  File \"x\"", logging.ERROR) == logging.ERROR
    assert line_level("steppewatch: note: nothing new", logging.ERROR) == logging.INFO
    assert line_level("[scrapy] ERROR: no date in front", logging.INFO) == logging.INFO


def test_a_command_past_its_timeout_is_stopped() -> None:
    done = run_relayed([sys.executable, "-c", "import time; time.sleep(600)"], None,
                       logging.getLogger("steppewatch.test_relay"), timeout=0.5)
    assert done.returncode == -15  # SIGTERM: a crawl stops gracefully on it
