"""Precision and recall of alert matching on the labelled set, per category and overall.

Usage: python bench/alerts_labelled.py

Why: the matcher's mechanisms (lemmas, readings by case, Turkic suffixes, whole-article
Boolean logic, extraction dropping page furniture) each answer a different way an alert goes
wrong, so one overall figure hides which one failed. Every item is matched the way
``steppewatch alerts match`` matches a stored record (``RuleSet.matches`` on title and text),
pages after the real extractor (``pipelines.extract.extract_page``). Categories:

* ``names``: the name table (tests/fixtures/alerts_names.yaml): 22 names in six Russian cases,
  queried in the nominative as written and in lower case (as analysts type), Ukrainian
  declension, Kazakh/Kyrgyz/Uzbek suffixed forms, and the Газа/газ traps both ways;
* ``boolean_cross_field``: title and text read as one document (``A NOT B`` across fields,
  ``A AND B`` split over them, ``fields: [title]``);
* ``sidebar_traps``: full pages whose furniture (related rails, "read also" lines, tags, most
  read, comments, tickers) names a term the body does not; the 29 fixture articles and two
  listing pages against the shipped "Astana talks" rule; a term must alert only from the body;
* ``gaza_kind_traps``: one spelling that is a common and a proper noun (Russian, Kazakh, Uzbek),
  sentence-initial and inside a sentence;
* ``positives``: plain sentences in Russian, English, Kazakh, Uzbek (both scripts) and Kyrgyz,
  and the "Astana talks" sentences (positive and negative).

``evaluate()`` returns category -> {tp, fp, fn}; ``rows()`` every item with its outcome. The
naive whole-page text of the fixture pages is scored beside the pipeline, to show what the
set can tell: a matcher reading whole pages alerts on every sidebar.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import lxml.html
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.extract import extract_page  # noqa: E402
from steppewatch.alerts.aliases import DEFAULT_ALIASES  # noqa: E402
from steppewatch.alerts.query import AliasTable, compile_query  # noqa: E402
from steppewatch.alerts.rules import Compiled, Rule, RuleSet, load_rules  # noqa: E402
from steppewatch.encoding import decode_body  # noqa: E402
from steppewatch.models import Article  # noqa: E402
from steppewatch.registry import adhoc_site, load_registry  # noqa: E402
from steppewatch.replay import ReplayServer  # noqa: E402

FIX = ROOT / "tests" / "fixtures"
CATEGORIES = ("names", "boolean_cross_field", "sidebar_traps", "gaza_kind_traps", "positives")
TARGET_PRECISION = 0.98
TARGET_RECALL = 0.97


@dataclass(frozen=True)
class Row:
    category: str
    query: str
    item: str  # the sentence, or the page and where it came from
    truth: bool
    hit: bool


@lru_cache(maxsize=1)
def _aliases() -> AliasTable:
    return AliasTable.from_lists(DEFAULT_ALIASES)


def rule_set(query: str, fields: list[str] | None = None, transliterate: bool = False) -> RuleSet:
    """One rule, compiled as ``load_rules`` compiles it (default alias table)."""
    rule = Rule(name="labelled", query=query, recipients=["bench@example.org"], transliterate=transliterate,
                **({"fields": fields} if fields else {}))
    return RuleSet([Compiled(rule, compile_query(query, _aliases(), transliterate))], aliases=_aliases())


def matches(rules: RuleSet, title: str, text: str) -> bool:
    return bool(rules.matches({"title": title, "text": text}))


def _name_rows() -> list[Row]:
    table = yaml.safe_load((FIX / "alerts_names.yaml").read_text("utf-8"))
    out: list[Row] = []
    for key in ("names", "ukrainian"):
        for entry in table.get(key, []):
            # as written, and in lower case as analysts type it
            for query in dict.fromkeys((entry["query"], entry["query"].lower())):
                rules = rule_set(query)
                out += [Row("names", query, s, True, matches(rules, "", s)) for s in entry["forms"]]
    for key, truth in (("suffixed", True), ("traps", False), ("reverse_traps", False)):
        for entry in table[key]:
            rules = rule_set(entry["query"])
            out += [Row("names", entry["query"], s, truth, matches(rules, "", s)) for s in entry["texts"]]
    return out


def _items(category: str, items: list[dict[str, Any]]) -> list[Row]:
    out = []
    for item in items:
        rules = rule_set(item["query"], item.get("fields"), item.get("transliterate", False))
        title, text = item.get("title", ""), item.get("text", "")
        label = f"{title} | {text}" if title else text
        out.append(Row(category, item["query"], label, item["match"], matches(rules, title, text)))
    return out


def _page_rows(pages: list[dict[str, Any]]) -> list[Row]:
    out = []
    for page in pages:
        body = (FIX / "alerts_pages" / page["file"]).read_bytes()
        result = extract_page(body, page["url"], adhoc_site(page["url"]))
        for check in page["checks"]:
            hit = isinstance(result, Article) and matches(rule_set(check["query"]), result.title, result.text)
            out.append(Row("sidebar_traps", check["query"], page["file"], check["match"], hit))
    return out


def _astana_talks() -> tuple[list[Row], list[Row]]:
    """The shipped "Astana talks" rule on the fixture pages (through the extractor) and its
    sentences; and the same pages' naive whole-page text."""
    labels = yaml.safe_load((FIX / "alerts_labelled.yaml").read_text("utf-8"))
    shipped = load_rules(ROOT / "config" / "alerts.yaml")
    rules = shipped.only(shipped.get(labels["rule"]))
    query = rules.rules[0].query
    registry = load_registry(FIX / "sites.yaml")
    server = ReplayServer(FIX / "sites")
    positive_pages = set(labels["pages"]["positive"])
    pipeline: list[Row] = []
    naive: list[Row] = []
    for path in sorted((FIX / "golden").glob("*.yaml")):
        golden = yaml.safe_load(path.read_text("utf-8"))
        site = registry.get(golden["site"])
        for url in [a["url"] for a in golden["articles"]] + [u for u in labels["pages"]["listings"]
                                                               if site.owns_host(u.split("/")[2])]:
            body = server.page(url)[2]
            result = extract_page(body, url, site)
            hit = isinstance(result, Article) and matches(rules, result.title, result.text)
            pipeline.append(Row("sidebar_traps", labels["rule"], url, url in positive_pages, hit))
            naive_text = lxml.html.fromstring(decode_body(body)[0]).text_content()
            naive.append(Row("sidebar_traps", labels["rule"], url, url in positive_pages, query.matches(naive_text)))
    for truth, key in ((True, "positive"), (False, "negative")):
        for sentence in labels["sentences"][key]:
            pipeline.append(Row("positives", labels["rule"], sentence, truth, matches(rules, "", sentence)))
    return pipeline, naive


def rows() -> list[Row]:
    """Every labelled item with its outcome."""
    labels = yaml.safe_load((FIX / "alerts_labelled.yaml").read_text("utf-8"))
    astana, _naive = _astana_talks()
    return (_name_rows() + _items("boolean_cross_field", labels["boolean_cross_field"])
            + _page_rows(labels["sidebar_pages"]) + [r for r in astana if r.category == "sidebar_traps"]
            + _items("gaza_kind_traps", labels["gaza_kind_traps"])
            + _items("positives", labels["positives"]) + [r for r in astana if r.category == "positives"])


def count(found: list[Row]) -> dict[str, dict[str, int]]:
    out = {c: {"tp": 0, "fp": 0, "fn": 0} for c in CATEGORIES}
    for row in found:
        if row.hit and row.truth:
            out[row.category]["tp"] += 1
        elif row.hit:
            out[row.category]["fp"] += 1
        elif row.truth:
            out[row.category]["fn"] += 1
    return out


def evaluate() -> dict[str, dict[str, int]]:
    """Category -> {"tp", "fp", "fn"} over the labelled set."""
    return count(rows())


def overall(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    return {k: sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn")}


def precision(c: dict[str, int]) -> float:
    return c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0


def recall(c: dict[str, int]) -> float:
    return c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0


def story_counts() -> dict[str, dict[str, int]]:
    """The story decisions of the labelled set: written same-story and different-story pairs
    (``bench/stories_labelled.py``) and one outlet's language editions and their traps
    (``bench/language_editions.py``), as category -> {tp, fp, fn}; a decision is positive
    when two articles become one story (one alert instead of two)."""
    from bench.language_editions import evaluate as editions
    from bench.stories_labelled import evaluate as stories

    out = {f"stories/{name}": {"tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn}
           for name, c in sorted(stories().items()) if name != "all"}
    out.update({f"editions/{name}": dict(c) for name, c in sorted(editions().items())})
    return out


def naive_false_positives() -> list[str]:
    """Fixture pages the "Astana talks" rule would alert on from their whole-page text only."""
    return [r.item for r in _astana_talks()[1] if r.hit and not r.truth]


def main() -> None:
    found = rows()
    counts = count(found)
    print(f"labelled items: {len(found)} ({sum(r.truth for r in found)} should alert)\n")
    print("| category | items | tp | fp | fn | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for category in CATEGORIES:
        c = counts[category]
        items = sum(1 for r in found if r.category == category)
        print(f"| {category} | {items} | {c['tp']} | {c['fp']} | {c['fn']} | {precision(c):.3f} | {recall(c):.3f} |")
    total = overall(counts)
    print(f"| **matching overall** | {len(found)} | {total['tp']} | {total['fp']} | {total['fn']} | "
          f"**{precision(total):.3f}** | **{recall(total):.3f}** |")
    decisions = story_counts()
    print("| *story decisions (positive: two articles become one story; the rest kept apart)* |||||||")
    for category, c in decisions.items():
        items = c["tp"] + c["fp"] + c["fn"] + c["tn"]
        print(f"| {category} | {items} | {c['tp']} | {c['fp']} | {c['fn']} | {precision(c):.3f} | {recall(c):.3f} |")
    grouped = overall(decisions)
    print(f"| **story decisions overall** | | {grouped['tp']} | {grouped['fp']} | {grouped['fn']} | "
          f"**{precision(grouped):.3f}** | **{recall(grouped):.3f}** |")
    both = overall({"matching": total, "stories": grouped})
    print(f"| **everything** | | {both['tp']} | {both['fp']} | {both['fn']} | "
          f"**{precision(both):.3f}** | **{recall(both):.3f}** |")
    print(f"\ntarget: precision >= {TARGET_PRECISION}, recall >= {TARGET_RECALL}")
    for row in found:
        if row.truth != row.hit:
            print(f"  {row.category}: {'missed' if row.truth else 'false alert'}: {row.query!r} in {row.item[:110]!r}")
    naive = naive_false_positives()
    print(f"\nnaive whole-page text of the fixture pages ('Astana talks'): {len(naive)} false alerts")
    for url in naive:
        print(f"  {url}")


if __name__ == "__main__":
    main()
