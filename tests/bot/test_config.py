from __future__ import annotations

import re

import pytest

from bot.build import build_index
from bot.definition.loader import load_bot
from bot.errors import ConfigError
from foundation.settings import Secret
from retrieval.embedder import SentenceEmbedder

from ..conftest import BOT_YAML, MakeBot


def error_of(root) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        load_bot(root)
    return str(info.value)


def test_valid_bot_loads_with_defaults(make_bot: MakeBot) -> None:
    bot = load_bot(make_bot())
    assert bot.config.name == "test_bot"
    assert bot.config.persona.name == "Ava"
    assert bot.config.faq is not None and bot.config.faq.top_k == 2
    assert bot.config.sessions.store == "sqlite"
    assert list(bot.config.channels) == ["rest"]


def test_malformed_yaml_names_file_and_line(make_bot: MakeBot) -> None:
    root = make_bot("name: x\npersona: [unclosed\n")
    assert re.search(r"bot\.yaml:[23]: invalid YAML", error_of(root))


def test_empty_examples_name_the_key_path_and_line(make_bot: MakeBot) -> None:
    root = make_bot("""
        name: b
        intents:
          - name: greet
            examples: [hi]
          - name: bye
            examples: []
    """)
    message = error_of(root)
    assert "bot.yaml:7: intents[1].examples: must not be empty" in message


def test_unknown_key_is_an_error_listing_valid_keys(make_bot: MakeBot) -> None:
    message = error_of(make_bot("name: b\npersona:\n  nmae: x\n"))
    assert "persona.nmae: unknown key" in message and "greeting" in message


def test_wrong_type_and_range(make_bot: MakeBot) -> None:
    assert "faq.top_k: must be an integer" in error_of(
        make_bot("name: b\nfaq:\n  sources: [a.yaml]\n  top_k: three\n"))
    assert "faq.answer_threshold: must be between" in error_of(
        make_bot("name: b\nfaq:\n  sources: [a.yaml]\n  answer_threshold: 7\n"))


def test_missing_required_name(make_bot: MakeBot) -> None:
    assert "name: required" in error_of(make_bot("description: no name\n"))


def test_unknown_response_and_duplicate_intent(make_bot: MakeBot) -> None:
    message = error_of(make_bot("""
        name: b
        intents:
          - {name: greet, examples: [hi], response: hello}
    """))
    assert "intents[0].response: unknown response 'hello'" in message
    message = error_of(make_bot("""
        name: b
        intents:
          - {name: greet, examples: [hi]}
          - {name: greet, examples: [hey]}
    """))
    assert "intents[1].name: duplicate intent 'greet'" in message


def test_included_section_errors_name_the_included_file(make_bot: MakeBot) -> None:
    root = make_bot("name: b\nintents: intents.yaml\n",
                    files={"intents.yaml": "- name: greet\n  examples: hello\n"})
    message = error_of(root)
    assert "intents.yaml:2: intents[0].examples: must be a list" in message


def test_included_section_loads(make_bot: MakeBot) -> None:
    root = make_bot("name: b\nintents: intents.yaml\n",
                    files={"intents.yaml": "- name: greet\n  examples: [hello, hi]\n"})
    assert load_bot(root).config.intents[0].examples == ("hello", "hi")


def test_env_secrets_are_resolved_and_hidden(make_bot: MakeBot,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TEST_SECRET", "s3cret-value")
    root = make_bot(BOT_YAML + "description: ${BOT_TEST_SECRET}\n")
    config = load_bot(root).config
    assert config.description == "s3cret-value"
    assert isinstance(config.description, Secret)
    assert "s3cret-value" not in repr(config)
    monkeypatch.delenv("BOT_TEST_SECRET")
    assert "description: environment variable BOT_TEST_SECRET is not set" in error_of(root)


def test_env_reference_with_default(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_TEST_UNSET", raising=False)
    root = make_bot(BOT_YAML + "description: ${BOT_TEST_UNSET:-plain}-${BOT_TEST_UNSET:-}\n")
    assert load_bot(root).config.description == "plain-"
    monkeypatch.setenv("BOT_TEST_UNSET", "set")
    assert load_bot(root).config.description == "set-set"


def test_unknown_channel_lists_valid_ones(make_bot: MakeBot) -> None:
    message = error_of(make_bot("name: b\nchannels:\n  fax: {}\n"))
    assert "channels.fax: unknown channel 'fax'; available channels:" in message
    assert "rest" in message


def test_missing_folder_and_binary_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert "bot folder does not exist" in error_of(tmp_path / "nope")
    (tmp_path / "bot.yaml").write_bytes(b"\xff\xfe\x00binary")
    assert "not UTF-8" in error_of(tmp_path)


def test_model_server_settings(make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TEST_MODEL_KEY", "sk-model-key")
    root = make_bot(BOT_YAML + "model:\n  server:\n    url: http://10.0.0.7:8000/v1\n"
                    "    model: smollm2\n    adapter: acme_bank\n"
                    "    api_key: ${BOT_TEST_MODEL_KEY}\n")
    server = load_bot(root).config.model.server
    assert server is not None and server.url == "http://10.0.0.7:8000/v1"
    assert (server.model, server.adapter, server.timeout_s) == ("smollm2", "acme_bank", 60.0)
    assert server.api_key == "sk-model-key" and "sk-model-key" not in repr(server)
    assert load_bot(make_bot()).config.model.server is None


def test_model_server_errors_name_file_and_key_path(make_bot: MakeBot) -> None:
    def server(lines: str) -> str:
        return error_of(make_bot("name: b\nmodel:\n  server:\n" + lines))

    assert "bot.yaml:3: model.server.url: required" in server("    model: m\n")
    message = server("    url: http://h/v1\n    model: m\n    adapters: x\n")
    assert "bot.yaml:6: model.server.adapters: unknown key" in message
    assert "api_key" in message and "timeout_s" in message
    assert "model.server.url: must be an absolute http:// or https:// URL with a host" in server(
        "    url: 10.0.0.7:8000/v1\n    model: m\n")
    assert "model.server.timeout_s: must be greater than 0" in server(
        "    url: https://h/v1\n    model: m\n    timeout_s: 0\n")


def test_duplicate_entity_names_the_second_one(make_bot: MakeBot) -> None:
    root = make_bot("""
        name: b
        entities:
          - {name: plan, lookup: [basic]}
          - {name: plan, pattern: "x"}
    """)
    assert re.search(r"bot\.yaml:5: entities\[1\]\.name: duplicate entity 'plan'", error_of(root))


def test_a_bad_faq_file_names_the_file_key_and_line(make_bot: MakeBot) -> None:
    root = make_bot()
    faq = next((root / "faq").glob("*.yaml"))
    faq.write_text("- id: a\n  question: hi?\n  answr: x\n")
    with pytest.raises(ConfigError, match=r"faq/.*\.yaml:1: \[0\]: unknown key 'answr'"):
        build_index(load_bot(root), SentenceEmbedder("all-MiniLM-L6-v2"))
