"""Property-based tests (hypothesis): URL canonicalisation, the alert query parser and
matcher, and text normalisation hold for inputs nobody thought to write down."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from steppewatch.alerts.query import Doc, QuerySyntaxError, compile_query, normalise, spans
from steppewatch.dedup import shingles
from steppewatch.models import content_hash, normalise_text
from steppewatch.urls import canonical_url, clean_url, in_domains, is_http_url

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzабвгдежзийклмнопрстуқңөү0123456789-", min_size=1, max_size=12)
HOSTS = st.lists(LABEL.filter(lambda s: not s.startswith("-") and not s.endswith("-")), min_size=1, max_size=3).map(
    lambda parts: ".".join(parts) + ".kz")
PATH = st.lists(st.text(alphabet="abcXYZ019-_.~%/?&=#;:@!$'()*+, ", max_size=10), max_size=4).map("/".join)
WORDS = st.lists(st.sampled_from("astana talks almaty нефть переговоры в астане uzbek cotton grain exports the and of"
                                 .split()), min_size=1, max_size=40)


@SETTINGS
@given(host=HOSTS, path=PATH, scheme=st.sampled_from(["http", "https", "HTTP"]))
def test_clean_url_is_idempotent_and_stays_http_on_the_same_site(host: str, path: str, scheme: str) -> None:
    url = f"{scheme}://{host}/{path}"
    if not is_http_url(url):
        return
    cleaned = clean_url(url)
    assert clean_url(cleaned) == cleaned
    assert cleaned.startswith(("http://", "https://")) and "#" not in cleaned
    assert in_domains(cleaned, [host]) and in_domains(url, [host])


@SETTINGS
@given(host=HOSTS, declared=st.one_of(st.none(), st.text(max_size=60)), path=PATH)
@example(host="m.kz", declared=None, path="")  # once mapped to the "mobile copy's" regular page, http://kz/
def test_canonical_url_never_leaves_the_allowed_domains(host: str, declared: str | None, path: str) -> None:
    fetched = f"http://{host}/{path}"
    if not is_http_url(fetched):
        return
    result = canonical_url(fetched, [declared], [host])
    assert in_domains(result, [host]) and is_http_url(result)


@SETTINGS
@given(query=st.text(max_size=80))
@example(query="a\U00017000")  # a letter without a Unicode name: pymorphy3's shape check failed on it
@example(query="Тока\U00017000ев")
def test_the_query_parser_accepts_or_names_the_problem(query: str) -> None:
    try:
        compiled = compile_query(query)
    except QuerySyntaxError as exc:
        assert str(exc)
        return
    spans(compiled.root, Doc.of("Astana talks on Syria resume in Astana"))  # evaluates without error
    spans(compiled.root, Doc.of(query + " Токаев\U00017000 Астане"))  # and on text carrying the same letters


@SETTINGS
@given(words=WORDS, data=st.data())
def test_a_phrase_taken_from_a_text_matches_that_text(words: list[str], data: st.DataObject) -> None:
    text = " ".join(words)
    start = data.draw(st.integers(0, len(words) - 1))
    end = data.draw(st.integers(start + 1, min(len(words), start + 4)))
    phrase = " ".join(words[start:end])
    query = compile_query(f'"{phrase}"')
    hits = [s for s in spans(query.root, Doc.of(text)) if s[0] >= 0]
    assert hits, (phrase, text)
    kept = compile_query(f'"{phrase}" AND NOT zzzabsent')
    assert [s for s in spans(kept.root, Doc.of(text)) if s[0] >= 0]
    excluded = compile_query(f'"{phrase}" AND NOT "{phrase}"')
    assert not [s for s in spans(excluded.root, Doc.of(text)) if s[0] >= 0]


@SETTINGS
@given(text=st.text(max_size=300))
def test_normalisation_is_idempotent_and_whitespace_blind(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once
    spaced = "  \n\t".join(text.split(" "))
    assert content_hash(spaced) == content_hash(" ".join(spaced.split()))
    assert normalise(normalise(text)) == normalise(text)


@SETTINGS
@given(words=WORDS, language=st.sampled_from(["en", "ru", "kk", None]))
def test_shingles_ignore_case_and_layout(words: list[str], language: str | None) -> None:
    text = " ".join(words)
    assert shingles(text.upper(), language) == shingles(text, language) == shingles("\n".join(words), language)
