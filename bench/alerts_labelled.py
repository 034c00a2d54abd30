"""Precision and recall of alert matching on the labelled set (tests/fixtures/alerts_labelled.yaml).

Usage: python bench/alerts_labelled.py
Pages go through the real extractor, then the shipped rule; the same pages' naive
whole-page text (what a scraper without extraction would match) is scored beside it.
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


if __name__ == "__main__":
    main()
