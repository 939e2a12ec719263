from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest

from bot.errors import ChannelError
from channels.registry import CHANNELS
from channels.twilio_sms import split_sentences, twilio_signature
from foundation.messages import BotReply

from .support import Recorded, Serve, StandIn, assert_nothing_stored, user_texts

ACCOUNT = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
PUBLIC_URL = "https://bot.example.com/webhooks/twilio"  # what Twilio calls; the proxy forwards
CUSTOMER, OURS = "+14155550100", "+18005551212"
SANDBOX = "whatsapp:+14155238886"  # Twilio's WhatsApp sandbox sender
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def sms(sid: str, body: str = "my card has not arrived", *, sender: str = CUSTOMER,
        to: str = OURS, **extra: str) -> list[tuple[str, str]]:
    """An incoming-message webhook, parameter for parameter as Twilio documents it
    (https://www.twilio.com/docs/messaging/guides/webhook-request)."""
    fields = {"ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
              "ToCity": "SAN FRANCISCO", "FromZip": "94105", "SmsSid": sid, "FromState": "CA",
              "SmsStatus": "received", "FromCity": "SAN FRANCISCO", "Body": body,
              "FromCountry": "US", "To": to, "MessagingServiceSid": "MG" + "ab" * 16,
              "ToZip": "94105", "NumSegments": "1", "MessageSid": sid, "AccountSid": ACCOUNT,
              "From": sender, "ApiVersion": "2010-04-01", **extra}
    return list(fields.items())


def whatsapp(sid: str, body: str = "reset my pin", **extra: str) -> list[tuple[str, str]]:
    """The same webhook for Twilio's WhatsApp: prefixed addresses, profile name, WaId."""
    return sms(sid, body, sender=f"whatsapp:{CUSTOMER}", to=SANDBOX, ProfileName="Sam",
               WaId=CUSTOMER.lstrip("+"), **extra)


async def post(client: Any, params: list[tuple[str, str]], *, token: str = AUTH_TOKEN,
               url: str = PUBLIC_URL, signature: str | None = "sign",
               body: bytes | None = None) -> Any:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature == "sign":
        headers["X-Twilio-Signature"] = twilio_signature(token, url, params)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    data = urlencode(params).encode() if body is None else body
    return await client.post("/webhooks/twilio", data=data, headers=headers)


def form(call: Recorded) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.body.decode(), keep_blank_values=True).items()}


@pytest.fixture
async def twilio_api() -> AsyncIterator[StandIn]:
    async with StandIn(default=(201, {"sid": "SM" + "cd" * 16, "status": "queued"})) as stand_in:
        yield stand_in


def settings(api: StandIn, **extra: Any) -> dict[str, Any]:
    return {"twilio": {"account_sid": ACCOUNT, "auth_token": AUTH_TOKEN,
                       "public_url": PUBLIC_URL, "api_base": api.url,
                       "retry": {"attempts": 3, "base_delay_s": 0.01}, **extra}}


def test_the_signature_is_twilios_documented_algorithm() -> None:
    # Twilio's example (docs/usage/security, "Validating requests"): auth token 12345.
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
              ("From", "+12349013030"), ("To", "+18005551212")]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    # and TwilioDevEd/api-snippets security/signature_validation/signature_validation.3.x.js
    other = [(k, "+14158675310" if k in ("Caller", "From") else v) for k, v in params]
    assert twilio_signature("12345", url, other) == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    assert twilio_signature("12345", url, list(reversed(other))) == \
        "GvWf1cFY/Q7PnoempGyD5oXAezc="  # the parameters' order does not matter


async def test_an_sms_is_acknowledged_with_empty_twiml_and_answered_via_the_rest_api(
        serve: Serve, twilio_api: StandIn) -> None:
    client = await serve(settings(twilio_api))
    started = time.perf_counter()
    response = await post(client, sms("SM" + "01" * 16))
    assert response.status == 200 and response.content_type == "text/xml"
    assert await response.text() == EMPTY_TWIML
    assert time.perf_counter() - started < 2.0
    (call,) = await twilio_api.wait_for(1)
    assert call.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{ACCOUNT}:{AUTH_TOKEN}".encode()).decode()
    sent = form(call)
    assert sent["To"] == CUSTOMER and sent["From"] == OURS
    assert sent["Body"].startswith("Cards arrive within 5-7 working days")
    assert sent["Body"].endswith("Sources: My card has not arrived yet")
    assert await user_texts(client, f"twilio:{CUSTOMER}") == ["my card has not arrived"]


async def test_the_url_is_signed_with_or_without_the_default_port(
        serve: Serve, twilio_api: StandIn) -> None:
    client = await serve(settings(twilio_api, show_citations=False))
    with_port = "https://bot.example.com:443/webhooks/twilio"
    assert (await post(client, sms("SM" + "02" * 16, "reset my pin"), url=with_port)).status == 200
    (call,) = await twilio_api.wait_for(1)
    assert form(call)["Body"].startswith("Open the app")


async def test_forged_missing_and_malformed_requests_are_rejected_storing_nothing(
        serve: Serve, twilio_api: StandIn) -> None:
    client = await serve(settings(twilio_api))
    params = sms("SM" + "03" * 16)
    tampered = twilio_signature(AUTH_TOKEN, PUBLIC_URL, params)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"signature": None}, 401, "missing X-Twilio-Signature"),
        ({"token": "another-accounts-token"}, 401, "does not match"),
        ({"url": "http://127.0.0.1/webhooks/twilio"}, 401, "does not match"),  # the proxy's
        ({"signature": "é"}, 401, "does not match"),
        ({"signature": tampered, "body": urlencode(
            [(k, "refund me" if k == "Body" else v) for k, v in params]).encode()}, 401,
         "does not match"),
        ({"signature": "x", "body": b"Body=%FF%FE&From=x"}, 400, "not a UTF-8 form"),
        ({"signature": "x", "body": b"Body=\xff"}, 400, "not a UTF-8 form"),
    ]
    for options, status, text in cases:
        response = await post(client, params, **options)
        assert response.status == status, (options, await response.text())
        assert text in (await response.json())["error"]
    twice = [*sms("SM" + "04" * 16), ("Body", "a second body")]
    assert (await post(client, twice)).status == 400
    nul = sms("SM" + "05" * 16, "hi\x00there")
    assert (await post(client, nul)).status == 400
    other_account = [(k, "AC" + "f" * 32 if k == "AccountSid" else v) for k, v in params]
    response = await post(client, other_account)
    assert response.status == 403 and "another Twilio account" in (await response.json())["error"]
    await asyncio.sleep(0.2)
    assert twilio_api.requests == []
    await assert_nothing_stored(client, f"twilio:{CUSTOMER}")


async def test_a_redelivered_message_is_answered_once(serve: Serve,
                                                      twilio_api: StandIn) -> None:
    client = await serve(settings(twilio_api))
    for _ in range(2):
        response = await post(client, sms("SM" + "06" * 16, "reset my pin"))
        assert response.status == 200 and await response.text() == EMPTY_TWIML
    await twilio_api.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(twilio_api.requests) == 1
    assert await user_texts(client, f"twilio:{CUSTOMER}") == ["reset my pin"]


async def test_media_without_text_gets_the_text_only_reply_and_status_callbacks_are_ignored(
        serve: Serve, twilio_api: StandIn) -> None:
    client = await serve(settings(twilio_api))
    media = "https://api.twilio.com/2010-04-01/Accounts/AC.../Messages/MM.../Media/ME..."
    mms = sms("MM" + "07" * 16, "", NumMedia="1", MediaContentType0="image/jpeg",
              MediaUrl0=media)
    assert (await post(client, mms)).status == 200
    location = whatsapp("SM" + "08" * 16, "", Latitude="37.7749", Longitude="-122.4194")
    assert (await post(client, location)).status == 200
    status = [(k, v) for k, v in sms("SM" + "09" * 16, "") if k != "Body"]
    status = [(k, "delivered" if k == "SmsStatus" else v) for k, v in status]
    assert (await post(client, [*status, ("MessageStatus", "delivered")])).status == 200
    calls = await twilio_api.wait_for(2)
    await asyncio.sleep(0.2)
    assert len(twilio_api.requests) == 2
    assert sorted(form(c)["To"] for c in calls) == [CUSTOMER, f"whatsapp:{CUSTOMER}"]
    assert all(form(c)["Body"].startswith("Sorry, I can only read text") for c in calls)
    await assert_nothing_stored(client, f"twilio:{CUSTOMER}")
    # a picture with a caption: the caption is answered
    captioned = sms("MM" + "10" * 16, "reset my pin", NumMedia="1",
                    MediaContentType0="image/png", MediaUrl0=media)
    assert (await post(client, captioned)).status == 200
    assert form((await twilio_api.wait_for(3))[2])["Body"].startswith("Open the app")


async def test_whatsapp_through_twilio_keeps_the_prefix_both_ways(
        serve: Serve, twilio_api: StandIn) -> None:
    client = await serve(settings(twilio_api, show_citations=False))
    assert (await post(client, whatsapp("SM" + "11" * 16))).status == 200
    (call,) = await twilio_api.wait_for(1)
    sent = form(call)
    assert sent["To"] == f"whatsapp:{CUSTOMER}" and sent["From"] == SANDBOX
    assert sent["Body"].startswith("Open the app")
    assert await user_texts(client, f"twilio:whatsapp:{CUSTOMER}") == ["reset my pin"]


async def test_sends_are_retried_on_429_and_5xx(serve: Serve) -> None:
    api = StandIn(default=(201, {"sid": "SM" + "ee" * 16}), script=[
        (429, {"code": 20429, "message": "Too Many Requests", "status": 429}),
        (503, {"code": 20503, "message": "Service unavailable", "status": 503})])
    await api.start()
    try:
        client = await serve(settings(api))
        assert (await post(client, sms("SM" + "12" * 16, "reset my pin"))).status == 200
        calls = await api.wait_for(3)
        assert all(form(c)["Body"].startswith("Open the app") for c in calls)
    finally:
        await api.close()


async def test_push_texts_the_sender_from_their_number_split_at_sentences(
        serve: Serve, twilio_api: StandIn) -> None:
    client = await serve(settings(twilio_api, show_citations=False))
    channel = client.app[CHANNELS]["twilio"]
    with pytest.raises(ChannelError, match="no Twilio number known"):
        await channel.push(CUSTOMER, BotReply(text="hello"))
    assert (await post(client, whatsapp("SM" + "13" * 16))).status == 200
    await twilio_api.wait_for(1)
    sentence = "Your replacement card is on its way and should arrive within a week. "
    await channel.push(f"whatsapp:{CUSTOMER}", BotReply(text=sentence * 40, kind="agent"))
    pushed = [form(c) for c in twilio_api.requests[1:]]
    assert len(pushed) == 2 and all(p["From"] == SANDBOX for p in pushed)
    assert all(len(p["Body"]) <= 1600 and p["Body"].endswith("week.") for p in pushed)
    assert " ".join(p["Body"] for p in pushed) == (sentence * 40).strip()
    twilio_api.default = (400, {"code": 21211, "message": "The 'To' number is not a valid "
                                "phone number.", "status": 400})
    with pytest.raises(ChannelError, match="21211"):
        await channel.push(f"whatsapp:{CUSTOMER}", BotReply(text="hello"))


async def test_push_to_a_new_sender_uses_from_number_and_on_whatsapp_the_template(
        serve: Serve, twilio_api: StandIn) -> None:
    template = {"content_sid": "HX" + "b7" * 16, "text_variable": True}
    client = await serve(settings(twilio_api, from_number=OURS, whatsapp_template=template))
    channel = client.app[CHANNELS]["twilio"]
    await channel.push(CUSTOMER, BotReply(text="An agent will call you back."))
    await channel.push(f"whatsapp:{CUSTOMER}", BotReply(text="An agent\nwill call you back."))
    sms_sent, template_sent = (form(c) for c in twilio_api.requests)
    assert sms_sent == {"To": CUSTOMER, "From": OURS, "Body": "An agent will call you back."}
    assert template_sent == {"To": f"whatsapp:{CUSTOMER}", "From": f"whatsapp:{OURS}",
                             "ContentSid": template["content_sid"],
                             "ContentVariables": '{"1": "An agent will call you back."}'}


async def test_whatsapp_pushes_are_free_text_inside_the_window_and_a_template_after_it(
        serve: Serve, twilio_api: StandIn) -> None:
    template = {"content_sid": "HX" + "c8" * 16}
    client = await serve(settings(twilio_api, show_citations=False, from_number=OURS,
                                  whatsapp_template=template))
    channel = client.app[CHANNELS]["twilio"]
    assert (await post(client, whatsapp("SM" + "21" * 16))).status == 200
    await twilio_api.wait_for(1)
    agent = BotReply(text="Hi, Anna here: I have reset it.", kind="agent")
    await channel.push(f"whatsapp:{CUSTOMER}", agent)
    assert form(twilio_api.requests[1])["Body"] == agent.text
    await channel.push(CUSTOMER, agent)  # SMS knows no window
    assert form(twilio_api.requests[2])["Body"] == agent.text
    later = time.time() + 24 * 3600 + 60
    channel.clock = lambda: later
    await channel.push(f"whatsapp:{CUSTOMER}", agent)
    outside = form(twilio_api.requests[3])
    assert outside["ContentSid"] == template["content_sid"] and "Body" not in outside
    assert "ContentVariables" not in outside and outside["From"] == SANDBOX
    client = await serve(settings(twilio_api, from_number=OURS))  # no template
    with pytest.raises(ChannelError, match="24 hours"):
        await client.app[CHANNELS]["twilio"].push(f"whatsapp:{CUSTOMER}", agent)


def test_split_sentences_prefers_sentence_then_word_ends() -> None:
    assert split_sentences("One two three. Four five six.", 20) == ["One two three.",
                                                                    "Four five six."]
    words = "Short. " + " ".join(["word"] * 10)  # the sentence ends too early: cut at a word
    assert split_sentences(words, 30) == ["Short. word word word word",
                                          "word word word word word word"]
    assert split_sentences("A first line here\nsecond line", 20) == ["A first line here",
                                                                      "second line"]
    assert split_sentences("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert split_sentences("", 160) == [""]
