"""Decode HTML and XML bytes to text when charset declarations are missing or wrong.

Central Asian sites still serve cp1251 and koi8-r, often without a charset header or
with one that lies. Scrapy's fallback guesses cp1252, which turns Cyrillic into
mojibake, so pages are decoded here: BOM, then strict UTF-8 (which almost never
decodes legacy bytes by accident), then the declared charsets and the Cyrillic legacy
codepages, scored by how plausible the resulting Cyrillic is.
"""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_\-.]+)["']""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_LEGACY = ("cp1251", "koi8-r", "cp1252", "iso-8859-5")
_FREQUENT = "оеаинтсрвлкмдпу"
_NON_LETTERS = re.compile(r"[\W\d_]+")
_NON_CYRILLIC = re.compile(r"[^\u0400-\u04ff]+")
_ASCII = re.compile(r"[\x00-\x7f]+")
_JUNK = re.compile(r"[\u2500-\u259f\ufffd]")
_WORD = re.compile(r"[^\W\d_]+")
_LATIN = re.compile(r"[a-zA-Z]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def _normal(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def _cyrillic_score(text: str) -> float:
    """Plausibility of decoded text as Russian/Kazakh prose (or Latin text).

    A wrong Cyrillic codepage still yields Cyrillic letters, but not the right ones:
    the fifteen most frequent Russian letters make up about 70% of real text and far
    less of a mis-decoding; Latin text is plain ASCII letters, not accented mojibake;
    real prose is mostly lowercase (koi8-r read as cp1251 flips case). Box-drawing
    characters and replacement marks count against a candidate.
    """
    # counted with regexes and str methods: this runs for every legacy-encoded page
    letters = _NON_LETTERS.sub("", text)
    if not letters:
        return 0.0
    cyr = _NON_CYRILLIC.sub("", letters)
    # Cyrillic decides as soon as there is enough of it, even on a page of mostly Latin
    # markup and English: the codepages differ only in how they read the high bytes
    if len(cyr) > min(len(letters) / 2, 200):
        lower = sum(map(str.islower, cyr)) / len(cyr)
        folded = cyr.lower()
        common = sum(folded.count(c) for c in _FREQUENT) / len(cyr)
    else:  # Latin text is mostly plain ASCII letters; Cyrillic read as cp1252 is not
        lower = sum(map(str.islower, letters)) / len(letters)
        common = (len(letters) - len(_ASCII.sub("", letters))) / len(letters)
    junk = len(_JUNK.findall(text))
    # A Latin page (German, Polish, Uzbek) read as a Cyrillic codepage keeps its ASCII
    # letters and turns its accented ones into Cyrillic letters inside Latin words:
    # "schцn". Real text of either script has almost no such mixed words.
    accented = [w for w in _WORD.findall(text) if not w.isascii()]
    mixed = sum(1 for w in accented if _LATIN.search(w) and _CYRILLIC.search(w))
    return common + 0.3 * lower - 5 * junk / max(len(text), 1) - 2 * mixed / max(len(accented), 1)


def declared_charsets(body: bytes, content_type: str | None) -> list[str]:
    found: list[str] = []
    if content_type:
        m = _HEADER_CHARSET.search(content_type)
        if m:
            found.append(m.group(1))
    head = body[:4096]
    for pattern in (_XML_DECL, _META_CHARSET):
        m = pattern.search(head)
        if m:
            found.append(m.group(1).decode("ascii", "replace"))
    return [n for n in (_normal(x) for x in found) if n]


def decode_body(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Return (text, encoding used)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, "replace"), name
    try:
        text = body.decode("utf-8")
        return text, "utf-8"
    except UnicodeDecodeError:
        pass
    # UTF-8 with a few broken bytes (a truncated multi-byte character, one pasted legacy
    # string) is still UTF-8: legacy text has almost no valid multi-byte sequences.
    text = body.decode("utf-8", "replace")
    broken = text.count("\ufffd") - body.count("\ufffd".encode())
    if sum(1 for c in text if ord(c) > 0x7F) - broken > 20 * max(broken, 1):
        return text, "utf-8"
    candidates = [c for c in declared_charsets(body, content_type) if c != "utf-8"]
    candidates += [c for c in _LEGACY if c not in candidates]
    sample = body[:200_000]
    best: tuple[float, str] | None = None
    for index, name in enumerate(candidates):
        try:
            text = sample.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
        # a small bonus keeps a declared or earlier charset when scores tie
        score = _cyrillic_score(text) + 0.01 * (len(candidates) - index) / len(candidates)
        if best is None or score > best[0]:
            best = (score, name)
    name = best[1] if best else "utf-8"
    return body.decode(name, "replace"), name
