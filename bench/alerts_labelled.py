"""Precision and recall of alert matching on the labelled set (tests/fixtures/alerts_labelled.yaml).

Usage: python bench/alerts_labelled.py
Pages go through the real extractor, then the shipped rule; the same pages' naive
whole-page text (what a scraper without extraction would match) is scored beside it.
Then the name table (tests/fixtures/alerts_names.yaml): 22 names of the region in the six
Russian cases, Kazakh/Kyrgyz/Uzbek suffixed forms and Газа/газ-kind traps, each sentence
against its nominative query with the default alias table, scored per category.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lxml.html
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.extract import extract_page  # noqa: E402
from steppewatch.alerts.aliases import DEFAULT_ALIASES  # noqa: E402
from steppewatch.alerts.query import AliasTable, compile_query  # noqa: E402
from steppewatch.alerts.rules import load_rules  # noqa: E402
from steppewatch.encoding import decode_body  # noqa: E402
from steppewatch.models import Article  # noqa: E402
from steppewatch.registry import load_registry  # noqa: E402
from steppewatch.replay import ReplayServer  # noqa: E402

FIX = ROOT / "tests" / "fixtures"


def evaluate() -> dict[str, Any]:
    labels = yaml.safe_load((FIX / "alerts_labelled.yaml").read_text("utf-8"))
    rule = load_rules(ROOT / "config" / "alerts.yaml").get(labels["rule"])
    registry = load_registry(FIX / "sites.yaml")
    server = ReplayServer(FIX / "sites")
    positive_pages = set(labels["pages"]["positive"])
    rows: list[tuple[str, bool, bool, bool]] = []  # (item, truth, pipeline, naive)
    for path in sorted((FIX / "golden").glob("*.yaml")):
        golden = yaml.safe_load(path.read_text("utf-8"))
        site = registry.get(golden["site"])
        for url in [a["url"] for a in golden["articles"]] + [u for u in labels["pages"]["listings"]
                                                               if site.owns_host(u.split("/")[2])]:
            body = server.page(url)[2]
            result = extract_page(body, url, site)
            pipeline = isinstance(result, Article) and rule.query.matches(result.title + "\n" + result.text)
            naive_text = lxml.html.fromstring(decode_body(body)[0]).text_content()
            rows.append((url, url in positive_pages, pipeline, rule.query.matches(naive_text)))
    for truth, key in ((True, "positive"), (False, "negative")):
        for sentence in labels["sentences"][key]:
            hit = rule.query.matches(sentence)
            rows.append((sentence, truth, hit, hit))

    def score(col: int) -> tuple[float, float, list[str], list[str]]:
        tp = sum(1 for r in rows if r[1] and r[col])
        fp = [r[0] for r in rows if not r[1] and r[col]]
        fn = [r[0] for r in rows if r[1] and not r[col]]
        return tp / (tp + len(fp)) if tp + len(fp) else 1.0, tp / (tp + len(fn)), fp, fn

    return {"rows": rows, "pipeline": score(2), "naive": score(3)}


def evaluate_names() -> list[tuple[str, str, str, bool, bool]]:
    """(category, query, sentence, should match, matches) for every sentence of the name table."""
    table = yaml.safe_load((FIX / "alerts_names.yaml").read_text("utf-8"))
    aliases = AliasTable.from_lists(DEFAULT_ALIASES)
    rows = []
    for entry in table["names"]:
        query = compile_query(entry["query"], aliases)
        rows += [(f"Russian cases: {entry['kind']}", entry["query"], s, True, query.matches(s)) for s in entry["forms"]]
    for category, key, truth in (("Kazakh/Kyrgyz/Uzbek suffixes", "suffixed", True),
                                 ("traps: common query, proper noun in text", "traps", False),
                                 ("traps: proper query, common noun in text", "reverse_traps", False)):
        for entry in table[key]:
            query = compile_query(entry["query"], aliases)
            rows += [(category, entry["query"], s, truth, query.matches(s)) for s in entry["texts"]]
    return rows


def print_names() -> None:
    rows = evaluate_names()
    print("\nname table (tests/fixtures/alerts_names.yaml), nominative query per name:\n")
    print("| category | items | should match | matched | false matches | missed | precision | recall |")
    print("|---|---|---|---|---|---|---|---|")
    for category in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == category]
        tp = sum(1 for r in mine if r[3] and r[4])
        fp = [r for r in mine if not r[3] and r[4]]
        fn = [r for r in mine if r[3] and not r[4]]
        positives = sum(1 for r in mine if r[3])
        precision = f"{tp / (tp + len(fp)):.3f}" if tp + len(fp) else "–"
        recall = f"{tp / positives:.3f}" if positives else "–"
        print(f"| {category} | {len(mine)} | {positives} | {tp + len(fp)} | {len(fp)} | {len(fn)} | {precision} "
              f"| {recall} |")
    for _category, query, sentence, truth, hit in rows:
        if truth != hit:
            print(f"  {'missed' if truth else 'false match'}: {query!r} in {sentence!r}")


def main() -> None:
    result = evaluate()
    rows = result["rows"]
    print(f"labelled items: {len(rows)} ({sum(r[1] for r in rows)} positive)\n")
    print("| matching on | precision | recall | false positives | missed |")
    print("|---|---|---|---|---|")
    for name, key in (("stored title + main text (shipped)", "pipeline"), ("naive whole-page text", "naive")):
        p, r, fp, fn = result[key]
        print(f"| {name} | {p:.3f} | {r:.3f} | {len(fp)} | {len(fn)} |")
    for name, key in (("pipeline", "pipeline"), ("naive", "naive")):
        for item in result[key][2]:
            print(f"  {name} false positive: {item[:100]}")
        for item in result[key][3]:
            print(f"  {name} missed: {item[:100]}")
    print_names()


if __name__ == "__main__":
    main()
