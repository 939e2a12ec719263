"""The answer decision's word evidence reads every script, not only English's."""

from __future__ import annotations

from adapters.answering.evidence import content_words


def test_english_words_keep_their_rules() -> None:
    assert content_words("How do I change my PINs? It's £100 a day") == {"change", "pin",
                                                                         "100", "day"}


def test_accented_words_stay_whole() -> None:
    assert content_words("¿Cómo cambio el PIN de mis tarjetas?") >= {"cómo", "cambio",
                                                                      "tarjeta", "pin"}
    assert "grösse" in content_words("Welche Größe hat die Karte?")  # case-folded: ß = ss


def test_unspaced_scripts_are_read_two_characters_at_a_time() -> None:
    words = content_words("我的银行卡被偷了")
    assert {"银行", "行卡", "被偷"} <= words
    assert content_words("卡") == {"卡"}  # one character alone still says something
    assert content_words("我的银行卡") & content_words("银行卡丢了")  # shared words: coverage
