"""Same-story decision on labelled pairs: the shipped rule against word Jaccard alone.

Usage: python bench/stories_labelled.py [EXTRACTION_DEV_PATH]

Two labelled sets:

- written pairs (``tests/fixtures/stories/story_pairs.yaml``): Russian, English, Kazakh,
  Uzbek (Latin and Cyrillic) and Kyrgyz texts written for this set; same story =
  syndicated copy, light or heavy rewrite, update, brief; different story = same topic
  another event, or one site's template furniture around different bodies;
- real pairs (``bench/story_pairs_real.yaml``, only with the path): pages of
  ``../shared/extraction-dev`` extracted with the project's extractor
  (``bench/real_texts.py``), every same-language pair either rule scored at 0.12 or
  more, labelled by hand by reading both texts. Only page ids and labels are stored here.

``evaluate()`` returns per-category true/false positives and misses so other benches can
import it. Pairs from one site are compared as the index compares them (``same_site``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from steppewatch import dedup  # noqa: E402

WRITTEN = ROOT / "tests" / "fixtures" / "stories" / "story_pairs.yaml"
REAL = ROOT / "bench" / "story_pairs_real.yaml"
THRESHOLDS = (0.12, 0.15, 0.18, 0.2, 0.25, 0.3)


@dataclass(frozen=True)
class Pair:
    id: str
    language: str
    a: str
    b: str
    same_site: bool
    same: bool
    category: str


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


Decision = Callable[[Pair], bool]


def written_texts(path: Path = WRITTEN) -> dict[str, dict[str, str]]:
    """Every named text of the written set, derivations applied: name -> site, text."""
    data = yaml.safe_load(path.read_text("utf-8"))
    blocks: dict[str, str] = data["blocks"]
    specs: dict[str, dict] = data["texts"]
    out: dict[str, dict[str, str]] = {}

    def build(name: str) -> str:
        spec = specs[name]
        if "text" in spec:
            return spec["text"]
        paragraphs = build(spec["from"]).splitlines()
        paragraphs = [p for i, p in enumerate(paragraphs) if i not in set(spec.get("drop", []))]
        if spec.get("append"):
            paragraphs += spec["append"].splitlines()
        head = [line for b in spec.get("head", []) for line in blocks[b].splitlines()]
        tail = [line for b in spec.get("tail", []) for line in blocks[b].splitlines()]
        return "\n".join(head + paragraphs + tail)

    for name, spec in specs.items():
        out[name] = {"site": spec["site"], "text": build(name)}
    return out


LANGUAGES = {"quake": "ru", "tenge": "ru", "gas": "ru", "bank": "en", "qazneft": "en", "saidov": "en",
             "metro": "uz", "grain": "uz", "blizzard": "kk", "media": "ky", "tax": "ky"}


def written_pairs(path: Path = WRITTEN) -> list[Pair]:
    texts = written_texts(path)
    data = yaml.safe_load(path.read_text("utf-8"))
    pairs = []
    for a, b, label, category in data["pairs"]:
        language = LANGUAGES[a.split("_")[0]]
        pairs.append(Pair(f"{a}~{b}", language, texts[a]["text"], texts[b]["text"],
                          texts[a]["site"] == texts[b]["site"], label == "same", category))
    return pairs


def real_pairs(root: Path, labels: Path = REAL) -> list[Pair]:
    from bench.real_texts import load

    items = {item["id"]: item for item in load(root)}
    pairs = []
    for row in yaml.safe_load(labels.read_text("utf-8"))["pairs"]:
        a, b = items[row["a"]], items[row["b"]]
        pairs.append(Pair(f"{row['a']}~{row['b']}", a["language"], a["text"], b["text"],
                          a["site"] == b["site"], row["label"] == "same", row["category"]))
    return pairs


@lru_cache(maxsize=4096)
def _evidence(text: str, language: str) -> dedup.Evidence:
    return dedup.evidence(text, language)


def old_rule(threshold: float = dedup.SAME_STORY_JACCARD) -> Decision:
    """Before issue 14: Jaccard of the whole texts' shingle sets."""
    return lambda p: dedup.jaccard(_evidence(p.a, p.language).shingles,
                                   _evidence(p.b, p.language).shingles) >= threshold


def new_rule(threshold: float = dedup.SAME_STORY_JACCARD) -> Decision:
    """The shipped decision: the index compares a new article's evidence with a stored one's."""
    def decide(p: Pair) -> bool:
        stored = replace(_evidence(p.b, p.language), by_paragraph=None)  # read back from the index: no text
        return dedup.same_story(_evidence(p.a, p.language), stored, p.same_site, threshold)
    return decide


def ablation(use_phrases: bool, use_figures: bool, threshold: float = dedup.SAME_STORY_JACCARD) -> Decision:
    """The shipped decision with some of its checks left out (own text is always used)."""
    def decide(p: Pair) -> bool:
        a, b = _evidence(p.a, p.language), replace(_evidence(p.b, p.language), by_paragraph=None)
        words, phrases = dedup.own_text_similarity(a, b, p.same_site)
        return (words >= threshold and (not use_phrases or phrases >= dedup.SAME_STORY_PHRASES)
                and (not use_figures or dedup.numbers_agree(a, b)))
    return decide


ABLATIONS = {"own text only": (False, False), "own text + phrases": (True, False),
             "own text + figures": (False, True)}


def evaluate(pairs: Iterable[Pair] | None = None, decide: Decision | None = None) -> dict[str, Counts]:
    """Per-category counts of the decision (default: the shipped one on the written set);
    the key ``all`` sums them."""
    decide = decide or new_rule()
    out: dict[str, Counts] = {"all": Counts()}
    for pair in written_pairs() if pairs is None else pairs:
        got = decide(pair)
        for key in (pair.category, "all"):
            c = out.setdefault(key, Counts())
            if got and pair.same:
                c.tp += 1
            elif got:
                c.fp += 1
            elif pair.same:
                c.fn += 1
            else:
                c.tn += 1
    return out


def report(title: str, pairs: list[Pair]) -> None:
    same = sum(p.same for p in pairs)
    print(f"\n### {title}: {len(pairs)} pairs, {same} same story, {len(pairs) - same} different\n")
    print("| rule | threshold | precision | recall | tp | fp | fn |")
    print("|---|---|---|---|---|---|---|")
    for name, rule in (("word Jaccard (before)", old_rule), ("shipped: own text, phrases, figures", new_rule)):
        for t in THRESHOLDS:
            c = evaluate(pairs, rule(t))["all"]
            mark = " **" if t == dedup.SAME_STORY_JACCARD else ""
            print(f"| {name} | {t}{mark} | {c.precision:.3f} | {c.recall:.3f} | {c.tp} | {c.fp} | {c.fn} |")
    print(f"\nwhat each check adds, at {dedup.SAME_STORY_JACCARD}\n")
    print("| checks | precision | recall | tp | fp | fn |")
    print("|---|---|---|---|---|---|")
    for name, (use_phrases, use_figures) in ABLATIONS.items():
        c = evaluate(pairs, ablation(use_phrases, use_figures))["all"]
        print(f"| {name} | {c.precision:.3f} | {c.recall:.3f} | {c.tp} | {c.fp} | {c.fn} |")
    old, new = evaluate(pairs, old_rule()), evaluate(pairs, new_rule())
    print(f"\nper category at {dedup.SAME_STORY_JACCARD} (before -> shipped; same story: missed, "
          "different story: merged)\n")
    print("| category | pairs | before | shipped |")
    print("|---|---|---|---|")
    for cat in sorted(k for k in new if k != "all"):
        o, n = old[cat], new[cat]
        total = n.tp + n.fp + n.fn + n.tn
        if n.tp + n.fn:
            print(f"| {cat} (same) | {total} | {o.fn} missed | {n.fn} missed |")
        else:
            print(f"| {cat} (different) | {total} | {o.fp} merged | {n.fp} merged |")


def main(argv: list[str]) -> None:
    print("## Story decision on labelled pairs (issue 14)")
    report("written pairs", written_pairs())
    if argv:
        report("real pages (extraction-dev)", real_pairs(Path(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
