"""Choose near-duplicate shingles and threshold on a labelled set; report precision/recall.

Usage: python bench/dedup_labelled.py

The labelled set: every pair of same-language golden articles of the fixture sites
(same story = the goldens' `story` label: syndicated copies, the machine-spun copy of
seed 003, a light rewrite and a second report of Dubnov's view, the Russian reports of
the Astana talks), plus derived copies of every article (other boilerplate appended,
a paragraph dropped and a few words changed), which must match their source. Pairs in
different languages are out of scope for text similarity.
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.extract import extract_page  # noqa: E402
from steppewatch import dedup  # noqa: E402
from steppewatch.models import Article, normalise_text  # noqa: E402
from steppewatch.registry import load_registry  # noqa: E402
from steppewatch.replay import ReplayServer  # noqa: E402

FIX = ROOT / "tests" / "fixtures"


def corpus() -> list[tuple[str, str, str, str]]:
    """(id, language, text, story label) for every golden article and derived copy."""
    registry = load_registry(FIX / "sites.yaml")
    server = ReplayServer(FIX / "sites")
    items = []
    boiler = []
    for path in sorted((FIX / "golden").glob("*.yaml")):
        golden = yaml.safe_load(path.read_text("utf-8"))
        boiler += golden.get("boilerplate", [])[:12]
        site = registry.get(golden["site"])
        for art in golden["articles"]:
            result = extract_page(server.page(art["url"])[2], art["url"], site)
            assert isinstance(result, Article), art["url"]
            label = art.get("story") or art["url"]
            items.append((art["url"], result.language or "", result.text, label))
    derived = []
    for n, (url, lang, text, label) in enumerate(items):
        paragraphs = text.splitlines()
        derived.append((url + "#boilerplate", lang, text + "\n" + "\n".join(boiler[n % 5::5]), label))
        edited = "\n".join(paragraphs[:-1]) if len(paragraphs) > 3 else text
        words = edited.split(" ")
        edited = " ".join(w.upper() if i % 17 == 0 else w for i, w in enumerate(words))  # case-only edits
        edited = re.sub(r"\b(\w{6,})\b", lambda m: m.group(1)[:-1], edited, count=8)  # eight words truncated
        derived.append((url + "#edited", lang, edited, label))
    return items + derived


def word_ngrams(text: str, k: int) -> set[int]:
    words = re.findall(r"\w+", normalise_text(text))
    return {hash(" ".join(words[i:i + k])) for i in range(max(1, len(words) - k + 1))}


SHINGLES = {
    "word 3-grams": lambda text, lang: word_ngrams(text, 3),
    "word 5-grams": lambda text, lang: word_ngrams(text, 5),
    "stemmed content words (shipped)": dedup.shingles,
}


def main() -> None:
    items = corpus()
    pairs = [(a, b, a[3] == b[3]) for a, b in itertools.combinations(items, 2) if a[1] == b[1]]
    positives = sum(same for *_, same in pairs)
    print(f"labelled pairs: {len(pairs)} same-language pairs, {positives} same story, "
          f"{len(pairs) - positives} different\n")
    print("| shingles | threshold | precision | recall |")
    print("|---|---|---|---|")
    for name, fn in SHINGLES.items():
        sets = {item[0]: fn(item[2], item[1]) for item in items}
        scores = [(dedup.jaccard(sets[a[0]], sets[b[0]]), same) for a, b, same in pairs]
        for t in (0.1, 0.15, 0.2, 0.25, 0.3, 0.5):
            tp = sum(1 for s, same in scores if s >= t and same)
            fp = sum(1 for s, same in scores if s >= t and not same)
            print(f"| {name} | {t} | {tp / (tp + fp) if tp + fp else 1:.3f} | {tp / positives:.3f} |")
    # the decision end to end: LSH candidates (shared band), then exact Jaccard >= threshold
    # (before issue 14) or dedup.same_story on the stored evidence (shipped)
    evidence = {item[0]: dedup.evidence(item[2], item[1]) for item in items}
    bands = {k: set(enumerate(dedup.band_hashes(dedup.signature(v.shingles)))) for k, v in evidence.items()}
    rules = {
        "word Jaccard, before issue 14": lambda a, b, same_site: dedup.jaccard(
            evidence[a].shingles, evidence[b].shingles) >= dedup.SAME_STORY_JACCARD,
        "dedup.same_story, shipped": lambda a, b, same_site: dedup.same_story(
            evidence[a], replace(evidence[b], by_paragraph=None), same_site),
    }
    for name, rule in rules.items():
        tp = fp = fn = 0
        for a, b, same in pairs:
            same_site = urlsplit(a[0]).hostname == urlsplit(b[0]).hostname
            decided = bool(bands[a[0]] & bands[b[0]]) and rule(a[0], b[0], same_site)
            tp += decided and same
            fp += decided and not same
            fn += (not decided) and same
        print(f"\npair decision (MinHash {dedup.NUM_PERM} perms, LSH {dedup.BANDS}x{dedup.ROWS}, {name}, "
              f"threshold {dedup.SAME_STORY_JACCARD}): precision {tp / (tp + fp):.3f}, "
              f"recall {tp / (tp + fn):.3f} ({tp} true, {fp} false positives, {fn} missed)")


if __name__ == "__main__":
    main()
