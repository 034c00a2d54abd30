"""steppewatch: scheduled scraping and keyword monitoring of Central Asian news.

The package holds what the spiders, pipelines, DAGs and CLI share: configuration,
the site registry, article models, URL canonicalisation, storage and the CLI.
"""

__version__ = "0.1.0"
