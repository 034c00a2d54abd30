"""The crawl's Scrapy settings: every project default in one place, as Scrapy's own
``default_settings`` module keeps its.

``steppewatch.crawl.scrapy_settings`` starts from these, adds what the configuration gives
(user agent, store, index, proxy) and the deployment's and the command line's overrides;
components read their settings without fallbacks, so a default is written here once.
Settings are prefixed by the component that reads them (``NEWS_*`` the spider,
``RETRY_BACKOFF_*`` and ``NETGUARD_*`` the middlewares, ``STORE_*`` the store pipeline,
``DEDUP_*`` the archive, ``PROGRESS_*`` the progress line).
"""

BOT_NAME = "steppewatch"
ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_DELAY = 0.5
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
# Scrapy starts this many asyncio worker tasks for every response's output; the
# pipelines are synchronous, so 100 (the default) only cost ~100 tasks per page
CONCURRENT_ITEMS = 4
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
# the errback that receives the failure logs it once (a source: WARNING, an
# article: INFO), counted by kind; Scrapy's own give-up line would double it at ERROR
RETRY_GIVE_UP_LOG_LEVEL = "DEBUG"
RETRY_BACKOFF_BASE = 1.0
RETRY_BACKOFF_MAX = 60.0
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
# Scrapy 2.19 otherwise serves an HTTP endpoint that runs Python code sent to it
# (token in a job file under the user's state directory) for every crawl
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = "INFO"
LOG_FORMATTER = "spiders.middlewares.QuietDropLogFormatter"
DOWNLOADER_MIDDLEWARES = {
    "spiders.middlewares.NetGuardMiddleware": 60,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "spiders.middlewares.BackoffRetryMiddleware": 550,
    "spiders.middlewares.FixedProxyMiddleware": 740,
}
# http(s) only: no file://, ftp://, s3:// or data: fetches, whatever a page links to
DOWNLOAD_HANDLERS = {"file": None, "ftp": None, "s3": None, "data": None}
NETGUARD_ALLOW_PRIVATE = False
NETGUARD_DNS_TIMEOUT = 5.0
# the address a name is connected to is the one checked (no DNS rebinding past the guard)
TWISTED_DNS_RESOLVER = "spiders.resolver.GuardedResolver"
STORE_RETRY_TIMES = 3
STORE_RETRY_BACKOFF = 1.0
STORE_MAX_CONSECUTIVE_FAILURES = 5
# extraction and the window's decision are the spider's (spiders/news.py); storing is this
ITEM_PIPELINES = {"pipelines.items.StorePipeline": 300}
# the run ledger (what every component counts, per source, and the keys written) and
# the archive (index + store) shared by the spider and the pipelines
EXTENSIONS = {"steppewatch.ledger.RunLedger": 50, "steppewatch.crawl_archive.CrawlArchive": 100,
              "steppewatch.progress.CrawlProgress": 200}
# the file the run ledger writes its store keys to (set per crawler by the runner; None: memory)
LEDGER_KEYS_FILE = None
# one progress line every PROGRESS_INTERVAL seconds for all the crawlers of a process
# (the CLI turns it on on a terminal or with --progress)
PROGRESS_ENABLED = False
PROGRESS_INTERVAL = 10.0
PROGRESS_BOARD = None  # the runner's one board for every crawler of a process (set when enabled)
DEDUP_ENABLED = True
DEDUP_RECHECK_WITHIN_HOURS = 48
DEDUP_RECHECK_AFTER_HOURS = 6
DEDUP_MAX_RECHECKS = 1
NEWS_REPROCESS = False
# a page extraction rejected is fetched again this many hours after its 1st, 2nd,
# 3rd… check (the last interval repeats): a stub may become an article, an error
# page come back; [0] re-checks every run
NEWS_REJECTION_RECHECK = [24, 168, 720]
# which articles a run owns (steppewatch/windows.py): backfill runs by date, with a
# tolerance at the edges; discover runs (scheduled) every new URL they fetch, reading
# their sources back to the look-back
NEWS_WINDOW_MODE = "backfill"
NEWS_LOOKBACK_HOURS = 48
NEWS_DATE_TOLERANCE_HOURS = 14
NEWS_MAX_CHILD_SITEMAPS = 50
NEWS_DISK_QUEUES = True
NEWS_SHARD = "0/1"  # k/n: this process fetches the articles whose URL hashes to k (--processes)
SCHEDULER_DISK_QUEUE = "scrapy.squeues.PickleFifoDiskQueue"
SCHEDULER_MEMORY_QUEUE = "scrapy.squeues.FifoMemoryQueue"
