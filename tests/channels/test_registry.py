from __future__ import annotations

import importlib.metadata
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import channels.registry as registry
from bot.definition.loader import load_bot
from bot.errors import ConfigError

from .support import Serve

FAKE_MODULE = '''
from __future__ import annotations
from dataclasses import dataclass
from aiohttp import web

@dataclass(frozen=True)
class EchoSettings:
    prefix: str = "echo"

class EchoChannel:
    name = "echo"
    Settings = EchoSettings

    def __init__(self, settings, *, on_message, on_stream):
        self.settings = settings

    def routes(self, prefix):
        async def hello(request):
            return web.json_response({"said": self.settings.prefix, "at": prefix})
        return [web.get(prefix, hello)]
'''


@pytest.fixture
def fake_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install a third-party connector the way a package would: an entry point."""
    (tmp_path / "fake_echo_channel.py").write_text(FAKE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.entry_points

    def entry_points(**selection: Any) -> Any:
        if selection.get("group") == registry.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints([importlib.metadata.EntryPoint(
                name="echo", value="fake_echo_channel:EchoChannel",
                group=registry.ENTRY_POINT_GROUP)])
        return real(**selection)

    monkeypatch.setattr(registry, "entry_points", entry_points)
    yield
    sys.modules.pop("fake_echo_channel", None)


def test_builtin_connectors_are_registered() -> None:
    found = registry.available()
    for name in ("rest", "webhook", "websocket", "webchat", "telegram", "slack"):
        cls = registry.channel_class(name)
        assert cls.name == name and found[name].startswith("channels.")


@pytest.mark.usefixtures("fake_entry_point")
async def test_entry_point_connector_is_found_validated_and_mounted(serve: Serve) -> None:
    assert registry.available()["echo"] == "fake_echo_channel:EchoChannel"
    with pytest.raises(KeyError,
                       match=r"available channels: chatwoot, echo, .*rest, .*slack, .*telegram"):
        registry.channel_class("nope")
    client = await serve({"echo": {"prefix": "hi"}})
    response = await client.get("/webhooks/echo")
    assert await response.json() == {"said": "hi", "at": "/webhooks/echo"}


def test_unknown_channel_and_bad_settings_name_the_yaml_key(
        make_bot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def load(channels: str) -> None:
        yaml = "name: b\nchannels:\n" + textwrap.indent(textwrap.dedent(channels), "  ")
        load_bot(make_bot(bot_yaml=yaml, files={}))

    with pytest.raises(ConfigError, match=r"channels.carrier_pigeon: unknown channel "
                       r"'carrier_pigeon'; available channels: .*webchat, webhook, websocket"):
        load("carrier_pigeon: {}")
    with pytest.raises(ConfigError, match=r"channels.telegram.token: required"):
        load("telegram: {secret_token: abc}")
    with pytest.raises(ConfigError, match=r"channels.telegram.secret_token: must be 1-256"):
        load("telegram: {token: '1:a', secret_token: 'no spaces'}")
    with pytest.raises(ConfigError, match=r"channels.webhook.secret: must be at least 16"):
        load("webhook: {callback_url: 'https://x.example/cb', secret: short}")
    with pytest.raises(ConfigError, match=r"channels.webhook.callback_url: must be an absolute"):
        load("webhook: {callback_url: 'ftp://x', secret: aaaaaaaaaaaaaaaaaaaa}")
    with pytest.raises(ConfigError, match=r"channels.webhook.retry.attempts: must be between"):
        load("webhook: {callback_url: 'https://x.example/cb', secret: aaaaaaaaaaaaaaaaaaaa,"
             " retry: {attempts: 0}}")
    with pytest.raises(ConfigError, match=r"channels.webchat.color: must be a hex colour"):
        load("webchat: {color: 'red; background: url(x)'}")
    with pytest.raises(ConfigError, match=r"channels.webchat.allowed_origins: .*not an origin"):
        load("webchat: {allowed_origins: ['https://shop.example.com/path']}")
    with pytest.raises(ConfigError, match=r"channels.slack.oops: unknown key"):
        load("slack: {signing_secret: a, bot_token: b, oops: 1}")
    with pytest.raises(ConfigError, match=r"environment variable TG_TOKEN_UNSET is not set"):
        load("telegram: {token: '${TG_TOKEN_UNSET}', secret_token: abc}")
    monkeypatch.setenv("TG_TOKEN", "123:abc")
    monkeypatch.setenv("TG_SECRET", "s3cret")
    yaml = ("name: b\nchannels:\n  telegram: {token: '${TG_TOKEN}', secret_token: "
            "'${TG_SECRET}'}\n  webchat: {title: Help, allowed_origins: ['https://a.example']}\n")
    bot = load_bot(make_bot(bot_yaml=yaml, files={}))
    settings = registry.channel_settings("telegram", bot.config.channels["telegram"],
                                         registry.Where("bot.yaml", "channels.telegram"))
    assert settings.token == "123:abc" and "123:abc" not in repr(settings)


async def test_push_is_optional_and_found_on_the_connectors_that_have_it(serve: Serve) -> None:
    client = await serve({"rest": {}, "websocket": {}, "webchat": {},
                          "telegram": {"token": "1:a", "secret_token": "s"},
                          "slack": {"signing_secret": "s", "bot_token": "xoxb-1"},
                          "webhook": {"callback_url": "http://127.0.0.1:9/cb",
                                      "secret": "0123456789abcdef"}})
    found = client.app[registry.CHANNELS]
    assert {name for name, ch in found.items() if registry.can_push(ch)} == \
        {"websocket", "webchat", "telegram", "slack", "webhook"}
