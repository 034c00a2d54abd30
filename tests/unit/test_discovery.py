"""Feed, sitemap and listing parsers: formats, dates, and hostile XML."""

from __future__ import annotations

import gzip
from zoneinfo import ZoneInfo

import pytest

from spiders.discovery import SourceError, inflate, parse_feed, parse_listing, parse_sitemap

TZ = ZoneInfo("Asia/Almaty")

RSS2 = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>
<item><title>A</title><link>http://s.test/a</link><pubDate>Tue, 03 Dec 2024 05:15:00 +0000</pubDate></item>
<item><title>B</title><guid>http://s.test/b</guid></item>
<item><title>C</title><link>javascript:alert(1)</link></item>
</channel></rss>"""

RDF = """<?xml version="1.0" encoding="windows-1251"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://k.test/"><title>K</title></channel>
<item rdf:about="http://k.test/ru/1"><title>Новость</title><link>http://k.test/ru/1</link>
<dc:date>2024-12-03T10:00:00+05:00</dc:date></item></rdf:RDF>""".encode("cp1251")

ATOM = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>d</title>
<entry><title>E</title><link rel="alternate" href="/e/1"/><link rel="enclosure" href="/img.jpg"/>
<published>2024-12-04T09:00:00Z</published><updated>2024-12-05T09:00:00Z</updated></entry></feed>"""

NEWS_SITEMAP = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
 xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
<url><loc>http://s.test/n/1</loc><news:news><news:publication><news:name>S</news:name></news:publication>
<news:publication_date>2024-12-02T08:00:00+05:00</news:publication_date><news:title>Title one</news:title></news:news></url>
<url><loc>http://s.test/n/2</loc><lastmod>2024-12-03</lastmod></url></urlset>"""

INDEX = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>http://s.test/sm-news.xml</loc><lastmod>2024-12-05T00:00:00Z</lastmod></sitemap>
<sitemap><loc>http://s.test/sm-old.xml.gz</loc></sitemap></sitemapindex>"""


def test_rss2_items_dates_and_unsafe_links() -> None:
    parsed = parse_feed(RSS2, "http://s.test/feed", TZ)
    assert parsed.kind == "rss" and parsed.error is None
    assert [e.url for e in parsed.entries] == ["http://s.test/a", "http://s.test/b"]
    assert parsed.entries[0].published.isoformat() == "2024-12-03T05:15:00+00:00"
    assert parsed.entries[1].published is None


def test_rdf_in_cp1251() -> None:
    parsed = parse_feed(RDF, "http://k.test/rss.rdf", TZ)
    assert parsed.kind == "rdf"
    assert parsed.entries[0].title == "Новость"
    assert parsed.entries[0].published.isoformat() == "2024-12-03T10:00:00+05:00"


def test_atom_alternate_link_and_published_date() -> None:
    parsed = parse_feed(ATOM, "http://d.test/feed.atom", TZ)
    assert parsed.kind == "atom"
    assert [e.url for e in parsed.entries] == ["http://d.test/e/1"]
    assert parsed.entries[0].published.isoformat() == "2024-12-04T09:00:00+00:00"


def test_html_where_a_feed_was_expected() -> None:
    parsed = parse_feed(b"<!DOCTYPE html><html><body><div id=app></div></body></html>", "http://a.test/rss", TZ)
    assert parsed.kind == "html" and "HTML" in parsed.error and not parsed.entries


def test_news_sitemap_keeps_nested_news_fields() -> None:
    parsed = parse_sitemap(NEWS_SITEMAP, "http://s.test/sm.xml", TZ)
    first, second = parsed.entries
    assert first.title == "Title one"
    assert first.published.isoformat() == "2024-12-02T08:00:00+05:00" and first.has_time
    assert second.published.isoformat() == "2024-12-03T00:00:00+05:00" and not second.has_time


def test_sitemap_index_and_gzip() -> None:
    parsed = parse_sitemap(gzip.compress(INDEX), "http://s.test/index.xml.gz", TZ)
    assert parsed.kind == "sitemapindex"
    assert [c.url for c in parsed.children] == ["http://s.test/sm-news.xml", "http://s.test/sm-old.xml.gz"]


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\0" * (5 * 1024 * 1024))
    with pytest.raises(SourceError, match="inflates beyond"):
        inflate(bomb, limit=1024 * 1024)


def test_entities_are_not_expanded_nor_fetched(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    xxe = f"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">
<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<rss version="2.0"><channel><item><title>&x;&c;</title><link>http://s.test/a</link></item></channel></rss>""".encode()
    parsed = parse_feed(xxe, "http://s.test/feed", TZ)
    title = parsed.entries[0].title or ""
    assert "TOPSECRET" not in title and "aaaaaaaaaa" not in title


def test_invalid_xml_is_an_error_not_a_crash() -> None:
    for body in (b"", b"<rss><channel><item>", b"\x00\x01\x02 binary", b"<root/>"):
        parsed = parse_feed(body, "http://s.test/feed", TZ)
        assert parsed.entries == [] and parsed.error


def test_listing_links_dates_and_next_page() -> None:
    html = b"""<html><body><nav><a href="/about">About</a></nav>
    <article class="teaser"><h2><a href="/news/2024/12/03/a/">A</a></h2><time datetime="2024-12-03T10:00:00+05:00">3 Dec</time></article>
    <article class="teaser"><h2><a href="/news/2024/12/02/b/#comments">B</a></h2></article>
    <a href="http://elsewhere.example/news/2024/12/01/x/">off-domain</a>
    <a rel="next" href="/news/page/2/">next</a></body></html>"""
    parsed = parse_listing(html, "http://s.test/news/", TZ, r"/news/\d{4}/")
    urls = [e.url for e in parsed.entries]
    assert urls[:2] == ["http://s.test/news/2024/12/03/a/", "http://s.test/news/2024/12/02/b/"]
    assert parsed.entries[0].published.isoformat() == "2024-12-03T10:00:00+05:00"
    assert parsed.next_pages == ["http://s.test/news/page/2/"]


def test_a_broken_link_or_a_date_that_raises_loses_only_that_entry_or_its_date(monkeypatch) -> None:
    """A link urljoin cannot read (a broken IPv6 host) is no link; a date the parser fails on is
    no date; neither loses the rest of the source."""
    import spiders.discovery as discovery

    real_date = discovery._date

    def fails_on_9999(value, tz):  # noqa: ANN001, ANN202
        if value and "9999" in value:
            raise OverflowError("date value out of range")
        return real_date(value, tz)

    monkeypatch.setattr(discovery, "_date", fails_on_9999)
    feed = b"""<rss version="2.0"><channel><item><link>http://[broken/x</link></item>
<item><link>http://s.test/a</link><pubDate>9999-12-31</pubDate></item>
<item><link>http://s.test/b</link><pubDate>Tue, 03 Dec 2024 05:15:00 +0000</pubDate></item></channel></rss>"""
    parsed = parse_feed(feed, "http://s.test/feed", TZ)
    assert [(e.url, e.published is None) for e in parsed.entries] == [("http://s.test/a", True), ("http://s.test/b", False)]
    sitemap = b"""<urlset><url><loc>http://[broken/x</loc></url><url><loc>http://s.test/a</loc><lastmod>9999-12-31</lastmod></url>
<url><loc>http://s.test/b</loc><lastmod>2024-12-03</lastmod></url></urlset>"""
    parsed = parse_sitemap(sitemap, "http://s.test/sm.xml", TZ)
    assert [(e.url, e.published is None) for e in parsed.entries] == [("http://s.test/a", True), ("http://s.test/b", False)]
    listing = b"""<html><body><a href="http://[broken/news/1/">x</a>
<div><a href="/news/2/">a</a><time datetime="9999-12-31">never</time></div>
<div><a href="/news/3/">b</a><time datetime="2024-12-03">3 Dec</time></div>
<a rel="next" href="http://[broken/news/page/2/">next</a><link rel="next" href="/news/page/2/"></body></html>"""
    parsed = parse_listing(listing, "http://s.test/news/", TZ, r"/news/\d+/")
    assert [(e.url, e.published is None) for e in parsed.entries] == [("http://s.test/news/2/", True),
                                                                     ("http://s.test/news/3/", False)]
    assert parsed.next_pages == ["http://s.test/news/page/2/"]
