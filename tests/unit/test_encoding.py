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
