"""Pages decode correctly whatever their charset declarations say."""

from __future__ import annotations

import pytest

from steppewatch.encoding import decode_body

RU = "Президент Казахстана провёл переговоры в Астане; ёлка, щука, съезд."
KK = "Қазақстан Республикасының әлеуметтік саясаты: ғылым, өңір, ұлт, үкімет, һ, і."


@pytest.mark.parametrize("encoding", ["cp1251", "koi8-r", "utf-8"])
@pytest.mark.parametrize(
    "header", [None, "text/html", "text/html; charset=utf-8", "text/html; charset=windows-1251",
               "text/html; charset=koi8-r", "text/html; charset=bogus-charset"])
def test_russian_round_trips(encoding: str, header: str | None) -> None:
    html = f"<html><head><title>т</title></head><body><p>{RU}</p><p>{RU}</p></body></html>".encode(encoding)
    text, _ = decode_body(html, header)
    assert RU in text


def test_kazakh_letters_round_trip_in_utf8_even_when_declared_cp1251() -> None:
    html = f'<html><head><meta charset="windows-1251"></head><body><p>{KK}</p></body></html>'.encode()
    text, used = decode_body(html, "text/html; charset=windows-1251")
    assert KK in text and used == "utf-8"


def test_meta_declaration_is_used_for_legacy_bytes() -> None:
    html = f'<html><head><meta charset="koi8-r"></head><body><p>{RU}</p></body></html>'.encode("koi8-r")
    text, used = decode_body(html, None)
    assert RU in text and used == "koi8-r"


DE = "Schöne Grüße aus München: Die Bürger äußern sich über höhere Preise für Öl und Gemüse. "
UZ = "Oʻzbekiston va Qozogʻiston oʻrtasidagi savdo hajmi oshdi. "


@pytest.mark.parametrize(("text", "encoding"), [(DE * 3, "cp1252"), (DE * 40, "cp1252"), (DE * 3, "iso-8859-1")])
def test_latin_page_without_declaration_is_not_read_as_cyrillic(text: str, encoding: str) -> None:
    # umlauts read as cp1251 become Cyrillic letters inside Latin words ("Grьяe")
    html = f"<html><body><p>{text}</p></body></html>".encode(encoding)
    decoded, used = decode_body(html, None)
    assert DE in decoded, used


@pytest.mark.parametrize("broken", [b"\xe9", b"\xff\xfe", b"\xd0"])
def test_utf8_with_a_few_broken_bytes_stays_utf8(broken: bytes) -> None:
    # a truncated character or one pasted legacy byte in a UTF-8 page, declared or not
    body = (RU + UZ + DE).encode() * 5
    html = b"<html><body><p>" + body + broken + b"</p><p>" + body + b"</p></body></html>"
    decoded, used = decode_body(html, None)
    assert used == "utf-8" and RU in decoded and UZ in decoded and DE in decoded
