"""Alert matching throughput: 100 rules over 100k stored articles, rules compiled once.

    .venv/bin/python bench/alert_matching.py [--articles 100000] [--rules 100] [--repeat 3]

Why: ``steppewatch alerts match`` runs every rule over every stored record of a crawl
(``Outbox.match_keys`` -> ``RuleSet.matches(record, country)``), and a backfill runs them
over months of records, so the cost per article and how it grows with the number of
rules decide whether matching keeps up with crawling.

What it does, all in memory (no store, no index, no SMTP):

* 100 realistic rules (``config/alerts.yaml``'s two, then 98 generated from 25 Central
  Asian topics: cross-script phrases, boolean combinations with -exclusions, NEAR/n,
  word* wildcards; country, language, site and title-only filters, min_occurrences,
  digests; alias expansion on), written to a rules file and compiled once with
  ``load_rules``;
* 100k synthetic stored records (title, text, language, site, published, ...) for the
  four fixture sites (English, Russian, Russian/Kazakh). Bodies of 2k-5k characters
  (median about 3k) are real sentences recombined: the golden files' ``must_contain``
  paragraphs, the fixture sites' article bodies and the prose lines of ../shared/seeds/.
  3% of the words are replaced by word-like blends, each seen about once, as names and
  rare forms are in a real stream (so the stemmer's cache is not always warm). Every
  pool sentence on its own able to complete a rule is left out of the background text
  (for an AND, only the rarest part's sentences), so matches come from the 3% of
  articles given a topic sentence (hand-written per topic, inflected, or a real
  sentence that was left out): "a few percent match some rule".

Each repetition times, over all articles and one after the other: (a) the text analysis
alone (``Doc.of`` on title and text: normalise, tokenise, stem), (b) ``RuleSet.matches``
with the first rule only ("Astana talks"), (c) ``RuleSet.matches`` with all the rules.
Figures are medians over the repetitions; ratios are taken within each repetition.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import re
import runpy
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from steppewatch.alerts.morph import word_keys as stem  # noqa: E402  (the per-word cache)
from steppewatch.alerts.query import And, Doc, Node, Not, Or, Phrase, spans, tokenize  # noqa: E402
from steppewatch.alerts.rules import RuleSet, load_rules  # noqa: E402

FIX = ROOT / "tests" / "fixtures"
SEEDS = ROOT.parent / "shared" / "seeds"
TAIL_RATE = 0.03  # share of words replaced by rare word-like blends
WARM_UP = 2000  # further articles, matched before timing and analysed before each pass
TOPIC_RATE = 0.03  # share of articles given a sentence on a rule's topic
TITLE_TOPIC_RATE = 0.3  # of those, share whose title is that sentence
# site -> languages and their shares (tests/fixtures/sites.yaml: countries KG, US, KZ, KZ)
SITES = {"steppe_times": {"en": 1.0}, "silkroad_review": {"en": 1.0}, "kazinfo": {"ru": 1.0},
         "dala_news": {"ru": 0.7, "kk": 0.3}}
RECIPIENTS = ["desk@example.org"]
EXCLUDE = [("football", "футбол"), ("hockey", "хоккей"), ("concert", "концерт"), ("lottery", "лотерея"),
           ("horoscope", "гороскоп")]


# -- rules ------------------------------------------------------------------------------------
# (English name, Russian name, English and Russian wildcard prefixes, English and Russian context
#  words, an English and a Russian sentence on the topic, written in the inflected forms news use)
TOPICS: list[tuple[str, str, str, str, tuple[str, str], tuple[str, str], str, str]] = [
    ("Kazatomprom", "Казатомпром", "kazatom", "казатом", ("uranium", "output"), ("уран", "добыча"),
     "Kazatomprom said uranium output would rise by about a tenth next year.",
     "Добыча урана Казатомпромом в следующем году вырастет примерно на десять процентов."),
    ("Rogun dam", "Рогунская ГЭС", "rogun", "рогун", ("hydropower", "financing"),
     ("гидроэлектростанция", "финансирование"),
     "Financing for the Rogun dam was agreed as the hydropower project entered its next phase.",
     "Финансирование строительства Рогунской ГЭС обсудили в Душанбе."),
    ("Kambarata-1", "Камбаратинская ГЭС-1", "kambarat", "камбарат", ("hydropower", "investors"),
     ("электроэнергия", "инвесторы"),
     "Investors from three countries agreed to fund Kambarata-1, a hydropower plant on the Naryn.",
     "Инвесторы договорились финансировать строительство Камбаратинской ГЭС-1 на Нарыне."),
    ("Caspian Pipeline Consortium", "Каспийский трубопроводный консорциум", "cpc", "ктк", ("oil", "tanker"),
     ("нефть", "танкер"),
     "Oil exports through the Caspian Pipeline Consortium (CPC) resumed after a tanker was cleared.",
     "Экспорт нефти через Каспийский трубопроводный консорциум (КТК) возобновился после проверки танкера."),
    ("Middle Corridor", "Средний коридор", "transcaspi", "транскаспи", ("container", "railway"),
     ("контейнеры", "перевозки"),
     "Container traffic on the Middle Corridor doubled as the Transcaspian railway added trains.",
     "Перевозки контейнеров по Среднему коридору выросли вдвое, сообщили в Транскаспийском союзе."),
    ("Eurasian Economic Union", "Евразийский экономический союз", "eaeu", "еаэс", ("tariffs", "summit"),
     ("пошлины", "саммит"),
     "Leaders met at a summit of the Eurasian Economic Union (EAEU) to discuss common tariffs.",
     "На саммите Евразийского экономического союза (ЕАЭС) обсудили единые пошлины."),
    ("Tokayev", "Токаев", "tokay", "токаев", ("Putin", "Kremlin"), ("Путин", "Кремль"),
     "Tokayev and Putin spoke by phone about trade and transit.",
     "Токаев и Путин обсудили по телефону торговлю и транзит."),
    ("Mirziyoyev", "Мирзиёев", "mirziyo", "мирзиё", ("reform", "visit"), ("реформа", "визит"),
     "Mirziyoyev arrived on a state visit and spoke about the reform of the energy market.",
     "Мирзиёев объявил о начале реформы энергетического рынка."),
    ("Japarov", "Жапаров", "japar", "жапар", ("parliament", "referendum"), ("парламент", "референдум"),
     "Japarov signed the law after parliament approved it in a third reading.",
     "Жапаров подписал закон, принятый парламентом в третьем чтении."),
    ("Rahmon", "Рахмон", "rahmon", "рахмон", ("decree", "Dushanbe"), ("указ", "Душанбе"),
     "Rahmon signed a decree in Dushanbe on Tuesday.",
     "Рахмон подписал указ о новом правительстве в Душанбе."),
    ("Berdimuhamedov", "Бердымухамедов", "berdimuham", "бердымухам", ("gas", "Galkynysh"), ("газ", "Галкыныш"),
     "Berdimuhamedov inspected the Galkynysh gas field with Chinese investors.",
     "Бердымухамедов осмотрел месторождение Галкыныш, откуда газ идет в Китай."),
    ("Samruk-Kazyna", "Самрук-Казына", "samruk", "самрук", ("IPO", "shares"), ("акции", "приватизация"),
     "Samruk-Kazyna plans to sell shares of two subsidiaries in an IPO next year.",
     "Самрук-Казына планирует продать акции двух дочерних компаний на бирже."),
    ("Air Astana", "Эйр Астана", "airline", "авиакомпан", ("flights", "fleet"), ("рейсы", "самолеты"),
     "The airline Air Astana will add weekly flights to Seoul and two aircraft to its fleet.",
     "Авиакомпания «Эйр Астана» запустит новые рейсы в Сеул."),
    ("Baikonur", "Байконур", "baikon", "байкон", ("launch", "rocket"), ("запуск", "ракета"),
     "A Soyuz rocket was launched from Baikonur at dawn.",
     "С Байконура стартовала ракета «Союз», запуск прошел штатно."),
    ("Aral Sea", "Аральское море", "aral", "арал", ("water", "drought"), ("вода", "засуха"),
     "Water levels in the Aral Sea fell again after a summer drought.",
     "Уровень воды в Аральском море снова упал после засухи."),
    ("Tengizchevroil", "Тенгизшевройл", "tengiz", "тенгиз", ("oil", "expansion"), ("нефть", "расширение"),
     "Tengizchevroil finished the oil field expansion a year late.",
     "Тенгизшевройл завершил проект расширения добычи нефти."),
    ("Kashagan", "Кашаган", "kashag", "кашаг", ("arbitration", "oil"), ("арбитраж", "нефть"),
     "The arbitration over Kashagan oil revenue continues in London.",
     "Арбитраж по Кашагану и доходам от нефти продолжается в Лондоне."),
    ("Power of Siberia 2", "Сила Сибири 2", "sibir", "сибир", ("gas", "pipeline"), ("газопровод", "газ"),
     "Talks on the Power of Siberia 2 gas pipeline stalled over prices.",
     "Переговоры по газопроводу «Сила Сибири 2» зашли в тупик из-за цены газа."),
    ("Issyk-Kul", "Иссык-Куль", "issyk", "иссык", ("tourism", "resort"), ("туристы", "курорт"),
     "Tourism on Issyk-Kul set a record this summer as resort bookings rose.",
     "Туристы на Иссык-Куле установили рекорд, курорт принял миллион гостей."),
    ("Kumtor", "Кумтор", "kumtor", "кумтор", ("gold", "mine"), ("золото", "рудник"),
     "Gold output at Kumtor rose as the mine expanded.",
     "Добыча золота на Кумторе выросла, рудник расширили."),
    ("CSTO", "ОДКБ", "csto", "одкб", ("peacekeepers", "exercises"), ("миротворцы", "учения"),
     "CSTO peacekeepers began exercises near the border.",
     "Миротворцы ОДКБ начали учения у границы."),
    ("Astana International Forum", "Астанинский международный форум", "forum", "форум", ("delegates", "panel"),
     ("участники", "делегаты"),
     "Delegates gathered at the Astana International Forum for a panel on climate.",
     "Участники Астанинского международного форума обсудили климат."),
    ("Bolashak", "Болашак", "bolash", "болаш", ("scholarship", "students"), ("стипендия", "студенты"),
     "Bolashak scholarship holders will again study at foreign universities.",
     "Студенты по программе «Болашак» получили стипендии."),
    ("Qosh-Tepa canal", "канал Кош-Тепа", "qosh", "кош", ("water", "irrigation"), ("вода", "орошение"),
     "The Qosh-Tepa canal will divert water from the Amu Darya for irrigation.",
     "Канал Кош-Тепа будет отводить воду из Амударьи."),
    ("Almaty metro", "метро Алматы", "metro", "метро", ("station", "line"), ("станция", "линия"),
     "A new station on the Almaty metro line opened on Friday.",
     "В метро Алматы открыли новую станцию."),
]


def _quote(name: str) -> str:
    return f'"{name}"' if " " in name or "-" in name else name


def topic_rules() -> list[dict[str, Any]]:
    """Four rules per topic, of four kinds, in topic order (so the first n rules are a mix)."""
    out: list[dict[str, Any]] = []
    for i, (en, ru, pre_en, pre_ru, ctx_en, ctx_ru, _, _) in enumerate(TOPICS):
        x_en, x_ru = EXCLUDE[i % len(EXCLUDE)]
        base = {"recipients": RECIPIENTS}
        out.append({**base, "name": f"{en}: names", "query": f'"{en}" OR "{ru}"'})
        out.append({**base, "name": f"{en}: in context",
                    "query": f"({_quote(en)} OR {_quote(ru)}) AND ({ctx_en[0]} OR {ctx_en[1]} OR {ctx_ru[0]} OR "
                             f"{ctx_ru[1]}) -{x_en} -{x_ru}"})
        out.append({**base, "name": f"{en}: near",
                    "query": f"({_quote(en)} NEAR/5 ({ctx_en[0]} OR {ctx_en[1]})) OR "
                             f"({_quote(ru)} NEAR/5 ({ctx_ru[0]} OR {ctx_ru[1]}))"})
        filters: list[dict[str, Any]] = [
            {"countries": ["KZ"], "mode": "digest", "schedule": "0 8 * * *", "timezone": "Asia/Almaty"},
            {"languages": ["ru"], "min_occurrences": 2},
            {"fields": ["title"]},
            {"countries": ["KZ", "KG"], "sites": ["steppe_times", "kazinfo"], "aliases": False},
        ]
        out.append({**base, **filters[i % len(filters)], "name": f"{en}: prefixes",
                    "query": f"({pre_en}* OR {pre_ru}*) AND ({ctx_en[0]} OR {ctx_ru[0]})"})
    return out


def rules_file(directory: Path, count: int) -> Path:
    """A rules file with the shipped rules and aliases, then generated ones, ``count`` rules in all."""
    shipped = yaml.safe_load((ROOT / "config" / "alerts.yaml").read_text("utf-8"))
    rules = [*shipped["rules"], *topic_rules()][:count]
    if len(rules) < count:
        raise SystemExit(f"at most {len(rules)} rules are defined")
    path = directory / f"alerts-{count}.yaml"
    path.write_text(yaml.safe_dump({"aliases": shipped.get("aliases") or [], "rules": rules},
                                   allow_unicode=True, sort_keys=False), "utf-8")
    return path


# -- text -------------------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?…»\"”])\s+(?=[\"«“A-ZА-ЯЁӘҒҚҢӨҰҮҺІ0-9])")
_KAZAKH = re.compile(r"[әғқңөұүһіӘҒҚҢӨҰҮҺІ]")
_CYRILLIC = re.compile(r"[а-яёА-ЯЁ]")


def _language(text: str) -> str:
    if not _CYRILLIC.search(text):
        return "en"
    return "kk" if _KAZAKH.search(text) else "ru"


def _sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(" ".join(paragraph.split())) if len(s.split()) >= 5]


def material() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(sentences, titles) by language, from the golden files, the fixture sites' bodies and the seeds."""
    sentences: dict[str, set[str]] = {"en": set(), "ru": set(), "kk": set()}
    titles: dict[str, set[str]] = {"en": set(), "ru": set(), "kk": set()}
    for path in sorted((FIX / "golden").glob("*.yaml")):
        for article in yaml.safe_load(path.read_text("utf-8"))["articles"]:
            titles[_language(article["title"])].add(article["title"])
            for paragraph in article.get("must_contain") or []:
                for s in _sentences(paragraph):
                    sentences[_language(s)].add(s)
    for path in sorted((FIX / "site_data").glob("*.py")):
        for article in runpy.run_path(str(path))["ARTICLES"]:
            titles[_language(article["title"])].add(article["title"])
            for paragraph in (article.get("body") or "").split("\n\n"):
                for s in _sentences(paragraph.removeprefix("Q: ").removeprefix("## ").removeprefix("> ")):
                    sentences[_language(s)].add(s)
    for path in sorted(SEEDS.glob("*.txt")):  # as scraped: keep prose lines, and short lines as headlines
        for line in path.read_text("utf-8").splitlines():
            line = line.strip()
            words = line.split()
            if len(words) >= 8 and line[-1:] in ".!?\"”’":
                for s in _sentences(line):
                    sentences[_language(s)].add(s)
            elif 5 <= len(words) <= 16 and sum(c.isalpha() for c in line) > 0.7 * len(line):
                titles[_language(line)].add(line)
    return ({k: sorted(v) for k, v in sentences.items()}, {k: sorted(v) for k, v in titles.items()})


def _blockers(node: Node, docs: list[Doc]) -> list[Node]:
    """Nodes whose occurrences, once absent from a text, keep ``node`` from matching it.

    For an AND only the positive part found in the fewest texts; for NEAR the rarer side.
    """
    if isinstance(node, Phrase):
        return [node]
    if isinstance(node, Or):
        return [b for part in node.parts for b in _blockers(part, docs)]
    if isinstance(node, Not):
        return []
    options = [p for p in node.parts if not isinstance(p, Not)] if isinstance(node, And) else [node.left,
                                                                                             node.right]

    def reach(part: Node) -> int:
        blockers = _blockers(part, docs)
        return sum(any(spans(b, d) for b in blockers) for d in docs)

    return _blockers(min(options, key=reach), docs)


def split_pool(units: list[str], ruleset: RuleSet) -> tuple[list[str], list[str]]:
    """(background units that cannot complete any rule, the units left out)."""
    docs = [Doc.of(u) for u in units]
    blockers = [b for compiled in ruleset.rules for b in _blockers(compiled.query.root, docs)]
    out = {i for i, d in enumerate(docs) if any(spans(b, d) for b in blockers)}
    return [u for i, u in enumerate(units) if i not in out], [u for i, u in enumerate(units) if i in out]


def _blend(rng: random.Random, words: list[str]) -> str:
    a, b = rng.choice(words), rng.choice(words)
    return a[: len(a) // 2 + 1] + b[len(b) // 2:]


def build_corpus(count: int, ruleset: RuleSet, seed: int = 11) -> list[tuple[dict[str, Any], str, bool]]:
    """``count`` stored records, each with its site's country and whether it was given a topic sentence."""
    sentences, titles = material()
    countries = {s["id"]: s["country"] for s in yaml.safe_load((FIX / "sites.yaml").read_text("utf-8"))["sites"]}
    background: dict[str, list[str]] = {}
    head: dict[str, list[str]] = {}
    topical: dict[str, list[str]] = {}
    for lang in sentences:
        background[lang], left_out = split_pool(sentences[lang], ruleset)
        head[lang], left_titles = split_pool(titles[lang], ruleset)
        written = [t[6] if lang == "en" else t[7] for t in TOPICS]
        topical[lang] = written + left_out + left_titles
    for lang in ("kk",):  # few Kazakh sentences in the fixtures: pad with Russian ones, as bilingual pages are
        background[lang] = background[lang] * 8 + background["ru"]
        head[lang] = head[lang] + head["ru"]
        topical[lang] = topical[lang] + topical["ru"]
    vocabulary = {lang: sorted({w.lower() for s in pool for w in re.findall(r"[^\W\d_]{4,}", s)})
                  for lang, pool in background.items()}
    rng = random.Random(seed)
    sites = sorted(SITES)
    corpus: list[tuple[dict[str, Any], str, bool]] = []
    for n in range(count):
        site = sites[n % len(sites)]
        lang = rng.choices(list(SITES[site]), weights=list(SITES[site].values()))[0]
        target = min(5000, max(2000, int(rng.lognormvariate(8.0, 0.3))))
        paragraphs: list[list[str]] = []
        size = 0
        while size < target:
            paragraph = [rng.choice(background[lang]) for _ in range(rng.randint(2, 5))]
            size += sum(len(s) + 1 for s in paragraph)
            paragraphs.append(paragraph)
        title = rng.choice(head[lang]) if rng.random() < 0.5 else " ".join(rng.choice(background[lang]).split()[:9])
        topic = rng.random() < TOPIC_RATE
        if topic:
            sentence = rng.choice(topical[lang])
            rng.choice(paragraphs).insert(0, sentence)
            if rng.random() < TITLE_TOPIC_RATE:
                title = sentence.rstrip(".")
        words = "\n\n".join(" ".join(p) for p in paragraphs).split(" ")
        for i in rng.sample(range(len(words)), max(1, round(TAIL_RATE * len(words)))):
            if words[i].isalpha():
                words[i] = _blend(rng, vocabulary[lang])
        text = " ".join(words)
        record = {"id": f"{n:016x}", "story_id": f"{n:016x}", "site": site, "url": f"http://{site}.test/bench/{n}",
                  "title": title, "text": text, "language": lang,
                  "published": f"2024-12-{1 + n % 28:02d}T{n % 24:02d}:00:00+00:00", "authors": []}
        corpus.append((record, countries[site], topic))
    return corpus


def describe(corpus: list[tuple[dict[str, Any], str, bool]]) -> dict[str, Any]:
    lengths = sorted(len(r["text"]) for r, _, _ in corpus)
    languages = Counter(r["language"] for r, _, _ in corpus)
    return {"languages": {k: languages[k] for k in ("en", "ru", "kk")}, "topical": sum(t for _, _, t in corpus),
            "chars": (lengths[len(lengths) // 10], lengths[len(lengths) // 2], lengths[9 * len(lengths) // 10]),
            "tokens": statistics.median(len(tokenize(r["text"])) for r, _, _ in corpus[:1000])}


def check_topics(ruleset: RuleSet) -> list[str]:
    """Rules whose topic sentence does not match them (filters aside): a mistake in TOPICS."""
    bad = []
    for compiled in ruleset.rules:
        topic = next((t for t in TOPICS if compiled.rule.name.startswith(t[0] + ":")), None)
        if topic and not any(compiled.query.matches(s) for s in topic[6:8]):
            bad.append(compiled.rule.name)
    return bad


# -- timing -----------------------------------------------------------------------------------
def analyse(record: dict[str, Any], country: str | None) -> list[Any]:
    Doc.of(record.get("title") or "")
    Doc.of(record.get("text") or "")
    return []


def timed_pass(match: Callable[[dict[str, Any], str | None], list[Any]],
               corpus: list[tuple[dict[str, Any], str]]) -> tuple[float, int, int]:
    """(seconds, articles with a match, matches) for one pass over the corpus."""
    matched = found = 0
    start = time.perf_counter()
    for record, country in corpus:
        out = match(record, country)
        if out:
            matched += 1
            found += len(out)
    return time.perf_counter() - start, matched, found


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sw-alert-bench-") as tmp:
        t0 = time.perf_counter()
        full = load_rules(rules_file(Path(tmp), args.rules))
        compile_s = time.perf_counter() - t0
        one = load_rules(rules_file(Path(tmp), 1))
    if bad := check_topics(full):
        print(f"warning: topic sentences that miss their rules: {bad}", file=sys.stderr)
    t0 = time.perf_counter()
    built = build_corpus(args.articles + WARM_UP, full)
    stats = describe(built[:args.articles])
    corpus, warm = [(r, c) for r, c, _ in built[:args.articles]], [(r, c) for r, c, _ in built[args.articles:]]
    del built
    print(f"corpus: {args.articles} articles in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    gc.collect()
    gc.freeze()  # the corpus is long-lived: keep the collector from walking it, as a stream of records would
    for record, country in warm:  # lazy imports and tables
        full.matches(record, country)

    passes: list[tuple[str, Callable[[dict[str, Any], str | None], list[Any]]]] = [
        ("analysis", analyse), ("one", one.matches), ("full", full.matches)]
    reps: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        row: dict[str, Any] = {}
        for key, fn in passes:
            stem.cache_clear()  # every pass starts alike: common words cached, this corpus's rare ones not
            for record, _country in warm:
                analyse(record, None)
            misses = stem.cache_info().misses
            row[key], row[key + "_matched"], row[key + "_found"] = timed_pass(fn, corpus)
            row[key + "_misses"] = stem.cache_info().misses - misses
        row["full/one"] = row["full"] / row["one"]
        row["eval_share"] = (row["full"] - row["analysis"]) / row["full"]
        reps.append(row)
        print(f"rep {rep + 1}: analysis {row['analysis']:.1f}s, 1 rule {row['one']:.1f}s, {args.rules} rules "
              f"{row['full']:.1f}s; matched {row['full_matched']} articles", file=sys.stderr)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in reps)

    n = args.articles

    def per_article(key: str) -> str:
        return f"{med(key) / n * 1e6:,.0f} µs"

    rule_name = one.rules[0].rule.name
    eval_us = (med("full") - med("analysis")) / n * 1e6
    print(f"## Alert matching ({n:,} articles, {args.rules} rules, median of {args.repeat})\n")
    print(f"Machine: {machine()}  \nCommand: `.venv/bin/python bench/alert_matching.py --articles {n} "
          f"--rules {args.rules} --repeat {args.repeat}`\n")
    print("| measure | per article | articles/s | ratio |\n|---|---:|---:|---|")
    print(f"| (a) text analysis alone: `Doc.of` title + text (normalise, tokenise, stem) | {per_article('analysis')} "
          f"| {n / med('analysis'):,.0f} | |")
    print(f"| (b) `RuleSet.matches`, 1 rule ({rule_name!r}) | {per_article('one')} | {n / med('one'):,.0f} | |")
    print(f"| (c) `RuleSet.matches`, {args.rules} rules, compiled once | {per_article('full')} "
          f"| **{n / med('full'):,.0f}** | (c)/(b) = {med('full/one'):.2f} |")
    print(f"| (c) − (a): evaluating {args.rules} rules on the analysed text | {eval_us:,.0f} µs "
          f"| | {med('eval_share'):.0%} of (c); {eval_us / args.rules:.1f} µs per rule |")
    langs = stats["languages"]
    chars = stats["chars"]
    print(f"\nCorpus: {n:,} records (en {langs['en']:,}, ru {langs['ru']:,}, kk {langs['kk']:,}); text "
          f"{chars[1]:,} characters median (p10 {chars[0]:,}, p90 {chars[2]:,}), {stats['tokens']:.0f} tokens; "
          f"{stats['topical']:,} given a topic sentence. Matched: {reps[0]['full_matched']:,} articles "
          f"({reps[0]['full_matched'] / n:.1%}), {reps[0]['full_found']:,} (rule, article) matches; "
          f"rule 1 alone: {reps[0]['one_matched']:,}. Stemmer cache misses in (a): "
          f"{med('analysis_misses') / n:.1f} per article. Rules compiled in {compile_s * 1000:.0f} ms.")
    print("Per repetition: " + "; ".join(f"{n / r['full']:,.0f} articles/s, (c)/(b) {r['full/one']:.2f}"
                                         for r in reps))
    if len({(r["full_matched"], r["full_found"]) for r in reps}) != 1:
        print("warning: repetitions disagree on the matches", file=sys.stderr)


if __name__ == "__main__":
    main()
