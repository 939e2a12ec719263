from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot.errors import ChannelError
from channels.botframework import allowed_service_url
from channels.registry import CHANNELS
from foundation.messages import BotReply

from .support import Recorded, Serve, StandIn, assert_nothing_stored, user_texts

APP_ID = "c9e8c047-2a74-40a2-b28a-b162d5f5327c"
APP_PASSWORD = "teams-client-secret~0123456789"
ISSUER = "https://api.botframework.com"
ACCESS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.bot-access-token"
USER = "29:1XJKJMvc5GBtc2JwZq0oj8tHZmzrQgFmB39ATiQWA85gQtHieVkKilBZ9XHoq9j7Zaqt7CZ-NJWi7me2kHTL3Bw"
CONVERSATION = ("a:17I0kl9EkpE1O9PH5TWrzrLNwnWWcfrU7QZjKR0WSfOpzbfcAg2IaydGElSo10tVr4C7Fc6Gtie"
                "TJX663WuJCc1uA83n4CSrHSgGBj5XNYLcVlJAs2ZX8DbYBPck201w-")


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str, endorsements: list[str]) -> dict[str, Any]:
    """A key as the connector's keys document lists it."""
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "endorsements": endorsements}


class BotFramework:
    """The Bot Framework on loopback: OpenID metadata and keys (GET) on one server, the token
    endpoint and the Bot Connector (POST, recorded) on a :class:`StandIn`."""

    def __init__(self) -> None:
        self.key, self.kid = new_key(), "key-1"
        self.keys = [public_jwk(self.key, self.kid, ["msteams", "webchat"])]
        self.fetches = 0
        self.keys_status = 200
        self.connector = Connector(default=(201, {"id": "1:reply"}))
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self.metadata)
        app.router.add_get("/v1/.well-known/keys", self.jwks)
        self.metadata_server = TestServer(app, host="127.0.0.1")

    async def metadata(self, request: web.Request) -> web.Response:
        self.fetches += 1
        base = str(self.metadata_server.make_url("")).rstrip("/")
        return web.json_response({  # login.botframework.com's document, its fields
            "issuer": ISSUER, "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{base}/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"]})

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": self.keys}, status=self.keys_status)

    @property
    def service_url(self) -> str:
        return self.connector.url + "/"

    @property
    def metadata_url(self) -> str:
        return str(self.metadata_server.make_url("/v1/.well-known/openidconfiguration"))

    def token(self, *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None,
              service_url: str | None = None, now: float | None = None, lifetime: int = 3600,
              algorithm: str = "RS256", **claims: Any) -> str:
        """A token as the connector signs it."""
        issued = int(time.time() if now is None else now)
        body = {"serviceurl": self.service_url if service_url is None else service_url,
                "nbf": issued - 60, "exp": issued + lifetime, "iss": ISSUER, "aud": APP_ID,
                **claims}
        return jwt.encode(body, key or self.key, algorithm=algorithm,
                          headers={"kid": kid or self.kid})

    def replies(self) -> list[Recorded]:
        return [r for r in self.connector.requests if r.path.startswith("/v3/")]

    def token_requests(self) -> list[Recorded]:
        return [r for r in self.connector.requests if r.path == "/token"]


class Connector(StandIn):
    """Answers the token endpoint; records everything."""

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/token":
            await super().handle(request)
            return web.json_response({"token_type": "Bearer", "expires_in": 3599,
                                      "ext_expires_in": 3599, "access_token": ACCESS_TOKEN})
        return await super().handle(request)


@pytest.fixture
async def bf() -> AsyncIterator[BotFramework]:
    framework = BotFramework()
    await framework.connector.start()
    await framework.metadata_server.start_server()
    yield framework
    await framework.connector.close()
    await framework.metadata_server.close()


def settings(bf: BotFramework, **extra: Any) -> dict[str, Any]:
    return {"teams": {"app_id": APP_ID, "app_password": APP_PASSWORD,
                      "openid_metadata_url": bf.metadata_url,
                      "token_url": bf.connector.url + "/token",
                      "service_hosts": ["smba.trafficmanager.net", "127.0.0.1"],
                      "retry": {"attempts": 3, "base_delay_s": 0.01}, **extra}}


def message(bf: BotFramework, text: str | None = "my card has not arrived",
            activity_id: str = "1485983408511", **fields: Any) -> dict[str, Any]:
    """Teams' documented message activity (msteams-docs, "Conversation basics"), field for
    field, with the loopback connector as its serviceUrl."""
    activity: dict[str, Any] = {
        "type": "message", "id": activity_id, "timestamp": "2017-02-01T21:10:07.437Z",
        "localTimestamp": "2017-02-01T14:10:07.437-07:00", "serviceUrl": bf.service_url,
        "channelId": "msteams",
        "from": {"id": USER, "name": "Megan Bowen",
                 "aadObjectId": "7faf8ab2-3d56-4244-b585-20c8a42ed2b8"},
        "conversation": {"conversationType": "personal", "id": CONVERSATION},
        "recipient": {"id": f"28:{APP_ID}", "name": "Teams TestBot"},
        "textFormat": "plain",
        "entities": [{"locale": "en-US", "country": "US", "platform": "Windows",
                      "timezone": "America/Los_Angeles", "type": "clientInfo"}],
        "channelData": {"tenant": {"id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
        "locale": "en-US", **fields}
    if text is not None:
        activity["text"] = text
    return activity


async def post(client: Any, activity: Any, token: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token if token.startswith(("Basic", "Bearer")) \
            else f"Bearer {token}"
    body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
    return await client.post("/webhooks/teams", data=body, headers=headers)


async def test_a_message_is_answered_in_its_conversation_with_an_app_token(
        serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf))
    started = time.perf_counter()
    response = await post(client, message(bf), bf.token())
    assert response.status == 200, await response.text()
    assert time.perf_counter() - started < 2.0
    await bf.connector.wait_for(2)
    (grant,) = bf.token_requests()
    assert {k: v[0] for k, v in parse_qs(grant.body.decode()).items()} == {
        "grant_type": "client_credentials", "client_id": APP_ID,
        "client_secret": APP_PASSWORD, "scope": "https://api.botframework.com/.default"}
    (reply,) = bf.replies()
    assert reply.path == f"/v3/conversations/{CONVERSATION}/activities/1485983408511"
    assert reply.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    body = reply.json
    assert body["type"] == "message" and body["replyToId"] == "1485983408511"
    assert body["from"]["id"] == f"28:{APP_ID}" and body["recipient"]["id"] == USER
    assert body["conversation"]["id"] == CONVERSATION
    assert body["text"].startswith("Cards arrive within 5-7 working days")
    assert body["text"].endswith("Sources: My card has not arrived yet")
    assert await user_texts(client, f"teams:{USER}") == ["my card has not arrived"]
    # the next message reuses the cached app token
    assert (await post(client, message(bf, "reset my pin", "2"), bf.token())).status == 200
    await bf.connector.wait_for(3)
    assert len(bf.token_requests()) == 1 and bf.fetches == 1


async def test_missing_forged_expired_and_misaddressed_tokens_are_a_401(
        serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf))
    now = time.time()
    intruder = new_key()
    cases: dict[str, str | None] = {
        "missing": None,
        "not bearer": "Basic dXNlcjpwYXNz",
        "not a JWT": "not-a-jwt",
        "not ascii": "é.é.é",
        "forged (another key, same kid)": bf.token(key=intruder),
        "unknown kid": bf.token(key=intruder, kid="intruder"),
        "expired beyond the leeway": bf.token(now=now - 3600 - 400),
        "not valid yet": bf.token(nbf=int(now) + 400),
        "another app": bf.token(aud="00000000-0000-0000-0000-000000000000"),
        "another issuer": bf.token(iss="https://sts.windows.net/evil/"),
        "another service url": bf.token(service_url="https://smba.trafficmanager.net/amer/"),
        "no service url": bf.token(service_url=""),
        "HS256 with the public key": jwt.encode(
            {"iss": ISSUER, "aud": APP_ID, "exp": int(now) + 60, "serviceurl": bf.service_url},
            "s" * 32, algorithm="HS256", headers={"kid": bf.kid}),
        "alg none": jwt.encode({"iss": ISSUER, "aud": APP_ID, "exp": int(now) + 60},
                               None, algorithm="none", headers={"kid": bf.kid}),
    }
    for case, token in cases.items():
        response = await post(client, message(bf), token)
        assert response.status == 401, (case, response.status, await response.text())
        assert "error" in await response.json()
    # a token for another channel than its key endorses
    response = await post(client, message(bf, channelId="skype"), bf.token())
    assert response.status == 401 and "endorse" in (await response.json())["error"]
    await asyncio.sleep(0.2)
    assert bf.connector.requests == []
    await assert_nothing_stored(client, f"teams:{USER}")
    # within the five minutes' leeway a token is still good
    response = await post(client, message(bf), bf.token(now=now - 3600 - 200))
    assert response.status == 200


async def test_a_service_url_that_is_not_allowed_never_gets_a_token(
        serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf))
    evil = "https://collector.example.net/"
    response = await post(client, message(bf, serviceUrl=evil), bf.token(service_url=evil))
    assert response.status == 403 and "service_hosts" in (await response.json())["error"]
    insecure = "http://smba.trafficmanager.net/amer/"
    response = await post(client, message(bf, serviceUrl=insecure),
                          bf.token(service_url=insecure))
    assert response.status == 403
    await asyncio.sleep(0.2)
    assert bf.connector.requests == []


def test_allowed_service_urls() -> None:
    hosts = ("*.botframework.com", "smba.trafficmanager.net", "127.0.0.1")
    assert allowed_service_url("https://smba.trafficmanager.net/amer/", hosts)
    assert allowed_service_url("https://webchat.botframework.com/", hosts)
    assert allowed_service_url("http://127.0.0.1:8123/", hosts)  # loopback, allowed: tests
    for url in ("http://smba.trafficmanager.net/amer/", "https://botframework.com.evil.io/",
                "https://evilbotframework.com/", "https://smba.trafficmanager.net@evil.io/",
                "https://user@smba.trafficmanager.net/", "https://[::1/", "ftp://127.0.0.1/",
                "https://smba.trafficmanager.net:99999/", "not a url"):
        assert not allowed_service_url(url, hosts), url


async def test_keys_are_refetched_for_an_unknown_kid_at_most_once_a_minute(
        serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf, show_citations=False))
    assert (await post(client, message(bf, "reset my pin", "1"), bf.token())).status == 200
    assert bf.fetches == 1
    rotated = new_key()
    bf.keys = [public_jwk(rotated, "key-2", ["msteams"])]
    # within a minute of the last fetch an unknown kid is refused without a fetch
    response = await post(client, message(bf, "reset my pin", "2"),
                          bf.token(key=rotated, kid="key-2"))
    assert response.status == 401 and bf.fetches == 1
    client.app[CHANNELS]["teams"].keys.min_refresh_s = 0.0
    response = await post(client, message(bf, "reset my pin", "3"),
                          bf.token(key=rotated, kid="key-2"))
    assert response.status == 200 and bf.fetches == 2
    replies = [r for r in await bf.connector.wait_for(3) if r.path.startswith("/v3/")]
    assert [r.json["replyToId"] for r in replies] == ["1", "3"]


async def test_unreachable_keys_are_a_503_not_a_500(serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf))
    bf.keys_status = 500
    response = await post(client, message(bf), bf.token())
    assert response.status == 503 and "signing keys" in (await response.json())["error"]


async def test_a_redelivered_activity_is_answered_once_and_other_types_are_ignored(
        serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf))
    for _ in range(2):
        assert (await post(client, message(bf, "reset my pin"), bf.token())).status == 200
    added = {  # msteams-docs: "bot added to personal context"
        "membersAdded": [{"id": f"28:{APP_ID}"}, {"id": USER, "aadObjectId": "***"}],
        "type": "conversationUpdate", "timestamp": "2019-04-23T10:17:44.349Z",
        "id": "f:5f85c2ad", "channelId": "msteams", "serviceUrl": bf.service_url,
        "from": {"id": USER, "aadObjectId": "***"},
        "conversation": {"conversationType": "personal", "id": CONVERSATION},
        "recipient": {"id": f"28:{APP_ID}", "name": "Teams TestBot"},
        "channelData": {"tenant": {"id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}}}
    response = await post(client, added, bf.token())
    assert response.status == 200 and "conversationUpdate" in (await response.json())["ignored"]
    typing = {**copy.deepcopy(added), "type": "typing"}
    assert (await post(client, typing, bf.token())).status == 200
    await bf.connector.wait_for(2)
    await asyncio.sleep(0.2)
    assert len(bf.replies()) == 1
    assert await user_texts(client, f"teams:{USER}") == ["reset my pin"]
    assert (await post(client, b'{"type": "message",', bf.token())).status == 400


async def test_attachments_without_text_get_the_text_only_reply(
        serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf))
    picture = message(bf, None, "10", attachments=[{
        "contentType": "image/*", "contentUrl": "https://us-api.asm.skype.com/v1/objects/0-x"}])
    assert (await post(client, picture, bf.token())).status == 200
    (reply,) = [r for r in await bf.connector.wait_for(2) if r.path.startswith("/v3/")]
    assert reply.json["text"].startswith("Sorry, I can only read text")
    assert reply.path.endswith("/activities/10")
    await assert_nothing_stored(client, f"teams:{USER}")
    # text with Teams' own text/html copy of it is answered as text
    html = message(bf, "reset my pin", "11", attachments=[
        {"contentType": "text/html", "content": "<p>reset my pin</p>"}])
    assert (await post(client, html, bf.token())).status == 200
    await bf.connector.wait_for(3)
    assert bf.replies()[-1].json["text"].startswith("Open the app")


async def test_the_bots_mention_is_removed_in_a_channel(serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf))
    channel_conversation = {"isGroup": True, "conversationType": "channel",
                            "id": "19:abc@thread.tacv2;messageid=1616", "tenantId": "t-1"}
    mention = {"type": "mention", "text": "<at>Teams TestBot</at>",
               "mentioned": {"id": f"28:{APP_ID}", "name": "Teams TestBot"}}
    activity = message(bf, "<at>Teams TestBot</at> reset my pin", "1617",
                       conversation=channel_conversation, entities=[mention])
    assert (await post(client, activity, bf.token())).status == 200
    await bf.connector.wait_for(2)
    (reply,) = bf.replies()
    assert reply.path == "/v3/conversations/19:abc@thread.tacv2;messageid=1616/activities/1617"
    assert await user_texts(client, f"teams:{USER}") == ["reset my pin"]


async def test_push_posts_to_the_senders_conversation_with_buttons_as_a_hero_card(
        serve: Serve, bf: BotFramework) -> None:
    client = await serve(settings(bf, show_citations=False))
    channel = client.app[CHANNELS]["teams"]
    with pytest.raises(ChannelError, match="must write to the bot first"):
        await channel.push(USER, BotReply(text="hello"))
    assert (await post(client, message(bf, "reset my pin"), bf.token())).status == 200
    await bf.connector.wait_for(2)
    buttons = ({"title": "Yes, call me", "payload": "/call_me"}, {"title": "No", "payload": ""})
    await channel.push(USER, BotReply(text="word " * 5000, buttons=buttons, kind="agent"))
    pushed = bf.replies()[1:]
    assert len(pushed) == 2
    assert all(p.path == f"/v3/conversations/{CONVERSATION}/activities" for p in pushed)
    assert all("replyToId" not in p.json and p.json["recipient"]["id"] == USER for p in pushed)
    assert " ".join(p.json["text"] for p in pushed).split() == ["word"] * 5000
    assert "attachments" not in pushed[0].json
    (card,) = pushed[1].json["attachments"]
    assert card == {"contentType": "application/vnd.microsoft.card.hero", "content": {
        "buttons": [{"type": "imBack", "title": "Yes, call me", "value": "/call_me"},
                    {"type": "imBack", "title": "No", "value": "No"}]}}
    bf.connector.default = (403, {"error": {"code": "BotNotInConversationRoster"}})
    with pytest.raises(ChannelError, match="BotNotInConversationRoster"):
        await channel.push(USER, BotReply(text="hello"))
