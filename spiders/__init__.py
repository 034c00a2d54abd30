"""Scrapy spiders and discovery parsers."""
