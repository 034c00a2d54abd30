"""Alert rules: the rules file, compiled once per run, and matching a stored article.

``config/alerts.yaml`` (``STEPPEWATCH_ALERTS``) holds ``rules:`` and optional extra
``aliases:`` groups. A bad rule (syntax error, unknown field, no recipients, bad
schedule or time zone) fails naming the rule and, for queries, the position.
Matching reads only an article's stored title and main text: page furniture never
reached the record, and listing pages are never records.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from steppewatch.alerts.aliases import DEFAULT_ALIASES
from steppewatch.alerts.query import AliasTable, Doc, Query, QuerySyntaxError, anchors, compile_query, spans

DEFAULT_ALERTS_PATH = Path("config/alerts.yaml")
_EMAIL = r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$"


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file, the rule and the field."""


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    query: str
    recipients: list[str] = Field(min_length=1)
    sites: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    fields: list[Literal["title", "text"]] = Field(default_factory=lambda: ["title", "text"], min_length=1)
    mode: Literal["immediate", "digest"] = "immediate"
    schedule: str | None = None
    timezone: str = "UTC"
    min_occurrences: int = Field(default=1, ge=1, le=100)
    aliases: bool = True
    transliterate: bool = False  # Latin words also match their Cyrillic transliterations and back

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or len(value) > 100 or any(c in value for c in "\r\n"):
            raise ValueError("a rule name is one line of 1 to 100 characters")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.match(_EMAIL, address):
                raise ValueError(f"not an e-mail address: {address!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _digest(self) -> Rule:
        if self.mode == "digest":
            if not self.schedule:
                raise ValueError("a digest rule needs a schedule (cron, e.g. '0 8 * * *')")
            from steppewatch.alerts.schedule import validate_cron

            validate_cron(self.schedule)
        return self


@dataclass(frozen=True)
class Compiled:
    rule: Rule
    query: Query


@dataclass(frozen=True)
class Match:
    rule: str
    occurrences: int
    snippet_text: str
    snippet_html: str
    title_hits: int = 0  # of the occurrences, those in the title (how strongly a copy matches)


class RuleSet:
    """Compiled rules. A record's fields are analysed once; a rule is evaluated on a field only
    when the field contains one of the rule's anchor terms (``query.anchors``), found for all
    the rules at once through an index of those terms, so the cost follows the rules that
    can match rather than the number of rules."""

    def __init__(self, rules: list[Compiled], path: str = "<memory>", aliases: AliasTable | None = None) -> None:
        self.rules = rules
        self.path = path
        self.aliases = aliases if aliases is not None else AliasTable.from_lists(DEFAULT_ALIASES)
        self._by_key: dict[str, list[int]] = {}  # a key of an anchor -> the rules it anchors
        self._by_prefix: list[tuple[str, int]] = []  # anchors ending in *
        self._always: list[int] = []  # rules without anchors
        for i, compiled in enumerate(rules):
            terms = anchors(compiled.query.root)
            if terms is None:
                self._always.append(i)
                continue
            for term in terms:
                if term.wildcard:
                    self._by_prefix.append((term.text, i))
                else:
                    for key in term.keys:
                        self._by_key.setdefault(key, []).append(i)
        self._keys = frozenset(self._by_key)

    def only(self, compiled: Compiled) -> RuleSet:
        """A rule set of one rule, with this set's alias table."""
        return RuleSet([compiled], self.path, self.aliases)

    def adhoc(self, query: str, label: str = "--query") -> Compiled:
        """A query tried without a rules file entry (``alerts preview --query``): compiled with
        this set's aliases; a syntax error names the position as ``alerts check`` does."""
        try:
            compiled = compile_query(query, self.aliases)
        except QuerySyntaxError as exc:
            raise RulesError(f"{label}: {exc} in {query!r}") from None
        return Compiled(Rule.model_construct(name=label, query=query, recipients=[]), compiled)

    def get(self, name: str) -> Compiled:
        for compiled in self.rules:
            if compiled.rule.name == name:
                return compiled
        raise RulesError(f"{self.path}: no rule named {name!r}")

    def candidates(self, doc: Doc) -> set[int]:
        """Indexes of the rules that can have a positive span in ``doc``."""
        found = set(self._always)
        by_key = self._by_key
        for key in doc.by_key.keys() & self._keys:
            found.update(by_key[key])
        for prefix, i in self._by_prefix:
            if i not in found and doc.has_prefix(prefix):
                found.add(i)
        return found

    def matches(self, record: dict[str, Any], country: str | None = None) -> list[Match]:
        """The rules an article matches. A rule's query is evaluated once over its fields as one
        document (title, separator, text): ``Astana NOT football`` does not fire when football
        is in the text only, and ``Kazatomprom AND uranium`` fires with one word in each field.
        """
        fields: dict[str, Doc] = {}  # each field is analysed once, for all the rules
        docs: dict[tuple[str, ...], tuple[Doc, set[int], list[int]]] = {}
        out = []
        for i, compiled in enumerate(self.rules):
            rule = compiled.rule
            if rule.sites and record.get("site") not in rule.sites:
                continue
            if rule.countries and country not in rule.countries:
                continue
            if rule.languages and record.get("language") not in rule.languages:
                continue
            names = tuple(n for n in ("title", "text") if n in rule.fields)
            if names not in docs:
                for name in names:
                    if name not in fields:
                        fields[name] = Doc.of(record.get(name) or "")
                doc = fields[names[0]] if len(names) == 1 else Doc.joined([fields[n] for n in names])
                starts, at = [], 0  # where each field's tokens start in the joined document
                for name in names:
                    starts.append(at)
                    at += len(fields[name].tokens) + 1
                docs[names] = (doc, self.candidates(doc), starts)
            doc, candidates, starts = docs[names]
            if i not in candidates:
                continue
            hits = sorted({s for s in spans(compiled.query.root, doc) if s[0] >= 0})
            if len(hits) < rule.min_occurrences or not hits:
                continue
            best: tuple[str, str] | None = None
            for name, start in reversed(list(zip(names, starts, strict=True))):  # the text's hits first
                own = [(s - start, e - start) for s, e in hits if start <= s and e - start <= len(fields[name].tokens)]
                if own:
                    best = snippet(record.get(name) or "", own)
                    break
            if best is not None:
                in_title = 0
                if names[0] == "title":
                    in_title = sum(1 for s, e in hits if e <= len(fields["title"].tokens))
                out.append(Match(rule.name, len(hits), best[0], best[1], in_title))
        return out


def snippet(text: str, hits: list[tuple[int, int]], width: int = 30) -> tuple[str, str]:
    """A window of text around the first hit, in plain text (**marked**) and escaped HTML."""
    from steppewatch.alerts.query import token_spans

    # token positions back to character offsets in the original text
    offsets = token_spans(text)
    if not offsets:  # nothing to map the hits to: the start of the text, unmarked
        words = text.split()
        return " ".join(words[:width]), html.escape(" ".join(words[:width]))
    first = min(h[0] for h in hits)
    lo = offsets[max(0, first - width // 2)][0]
    hi = offsets[min(len(offsets) - 1, first + width // 2)][1]
    marks = sorted({(offsets[s][0], offsets[e - 1][1]) for s, e in hits if s >= 0 and e > s and e <= len(offsets)})
    plain, rich, cursor = [], [], lo
    for start, end in marks:
        if start < lo or end > hi or start < cursor:
            continue
        plain += [text[cursor:start], "**", text[start:end], "**"]
        rich += [html.escape(text[cursor:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        cursor = end
    plain.append(text[cursor:hi])
    rich.append(html.escape(text[cursor:hi]))
    prefix, suffix = ("… " if lo > 0 else ""), (" …" if hi < len(text) else "")
    clean = lambda s: re.sub(r"\s+", " ", s).strip()  # noqa: E731
    return prefix + clean("".join(plain)) + suffix, prefix + clean("".join(rich)) + suffix


def alerts_path() -> Path:
    from steppewatch.registry import project_default

    """The bundled rules; the configured ones (``STEPPEWATCH_ALERTS``) are ``Config.alerts``."""
    return project_default(DEFAULT_ALERTS_PATH)


def load_rules(path: str | Path | None = None) -> RuleSet:
    path = Path(path) if path else alerts_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"{path}: rules file not found") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        raise RulesError(f"{path}: expected a mapping with a 'rules' list")
    unknown = set(raw) - {"rules", "aliases"}
    if unknown:
        raise RulesError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    extra = raw.get("aliases") or []
    if not isinstance(extra, list) or not all(isinstance(g, list) and all(isinstance(x, str) for x in g)
                                              for g in extra):
        raise RulesError(f"{path}: 'aliases' must be a list of lists of names")
    table = AliasTable.from_lists([*DEFAULT_ALIASES, *extra])
    compiled: list[Compiled] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw["rules"]):
        label = entry.get("name", f"#{index}") if isinstance(entry, dict) else f"#{index}"
        try:
            rule = Rule.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(f"field {'.'.join(str(p) for p in e['loc']) or '(rule)'}: {e['msg']}"
                                 for e in exc.errors())
            raise RulesError(f"{path}: rule {label!r}: {problems}") from None
        if rule.name in seen:
            raise RulesError(f"{path}: rule {rule.name!r}: field name: duplicate rule name")
        seen.add(rule.name)
        try:
            query = compile_query(rule.query, table if rule.aliases else None, rule.transliterate)
        except QuerySyntaxError as exc:
            raise RulesError(f"{path}: rule {rule.name!r}: field query: {exc} in {rule.query!r}") from None
        compiled.append(Compiled(rule, query))
    return RuleSet(compiled, str(path), table)


# Operators are upper case only; these forms are searched as words, which is rarely meant.
_OPERATOR_LIKE = re.compile(r"(?:and|or|not|near/\d+)", re.IGNORECASE)
_QUERY_PART = re.compile(r'"[^"]*"?|[^\s()"]+')


def query_warnings(query: str) -> list[str]:
    """Words of a query that look like operators but are not (``or``, ``Not``, ``near/3``):
    the query is valid and searches them as words. Quoted, they are not reported."""
    out = []
    for m in _QUERY_PART.finditer(query):
        word = m.group()
        if not word.startswith('"') and _OPERATOR_LIKE.fullmatch(word) and word != word.upper():
            out.append(f"position {m.start()}: {word!r} is searched as a word, not the operator {word.upper()} "
                       f"(write {word.upper()} for the operator, or quote it)")
    return out


def unknown_rule_sites(rules: RuleSet, registry: Any) -> list[str]:
    """Problems with the site ids rules are limited to: an id the registry does not have can
    never match, and one that mixes scripts (``kаzinfo`` with a Cyrillic а) looks right to a
    reader while it is not (``Registry.unknown`` says which)."""
    known = {site.id for site in registry.sites}
    return [f"rule {compiled.rule.name!r}: field sites: {registry.unknown(site)}: the rule can never fire"
            for compiled in rules.rules for site in compiled.rule.sites if site not in known]
