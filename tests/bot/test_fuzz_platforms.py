"""Fuzz the platform channels (WhatsApp, Messenger, Instagram, Twilio, Teams): signed events
of any shape, forged and unsigned requests, hostile verification queries never give a 5xx
and never reach the dialogue unless signed."""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from typing import Any
from urllib.parse import quote_plus

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from bot.server.pipeline import PIPELINE
from channels.twilio_sms import twilio_signature

from .fuzz_support import (
    bodies,
    channel_name,
    dialogue_spy,
    error_of,
    extras,
    hostile_bytes,
    ids,
    lists,
    maybe,
    odd_digits,
    quoted,
    settle,
    shaped,
    shapes,
    texts,
    times,
)
from .production_support import (
    FORM_ENDPOINTS,
    META_ENDPOINTS,
    META_VERIFY_TOKEN,
    TOKEN_ENDPOINTS,
    TWILIO_ACCOUNT,
    TWILIO_AUTH_TOKEN,
    TWILIO_URL,
    WHATSAPP_NUMBER_ID,
    ServerThread,
    meta_signature,
    raw_request,
    signed_headers,
)

whatsapp_message = shaped(
    {"from": ids, "id": ids, "type": maybe(st.sampled_from(
        ["text", "interactive", "button", "image", "reaction", "system", "unsupported"]))},
    timestamp=times, text=shaped({"body": texts}),
    interactive=shaped({"type": maybe(st.sampled_from(["button_reply", "list_reply", "nfm"]))},
                       button_reply=shaped({"id": texts}, title=texts),
                       list_reply=shaped({"title": texts}, id=texts)),
    button=shaped({}, payload=texts, text=texts),
    reaction=shaped({"message_id": ids}, emoji=maybe(st.sampled_from(["", "\U0001f44d"]))),
    image=extras)
whatsapp_status = shaped(
    {"id": ids, "status": maybe(st.sampled_from(["sent", "delivered", "read", "failed"]))},
    errors=lists(shaped({}, code=extras, title=extras), 2))
whatsapp_value = shaped(
    {"messaging_product": st.just("whatsapp"),
     "metadata": shaped({"phone_number_id": maybe(st.just(WHATSAPP_NUMBER_ID))})},
    messages=lists(whatsapp_message, 3), statuses=lists(whatsapp_status, 2), contacts=extras)
whatsapp_entry = shaped({"id": ids, "changes": lists(shaped(
    {"field": maybe(st.just("messages")), "value": whatsapp_value}), 2)})
messaging_event = shaped(
    {"sender": shaped({"id": ids}), "recipient": shaped({"id": ids}), "timestamp": times},
    message=shaped({"mid": ids}, text=texts, quick_reply=shaped({"payload": texts}),
                   is_echo=maybe(st.booleans()), is_deleted=maybe(st.booleans()),
                   attachments=extras),
    postback=shaped({}, mid=ids, payload=texts, title=texts),
    reaction=shaped({"action": maybe(st.sampled_from(["react", "unreact"]))},
                    mid=ids, emoji=texts),
    read=extras)
messaging_entry = shaped({"id": ids, "time": times, "messaging": lists(messaging_event, 3)})
META_OBJECTS = {"/webhooks/whatsapp": ("whatsapp_business_account", whatsapp_entry),
                "/webhooks/messenger": ("page", messaging_entry),
                "/webhooks/instagram": ("instagram", messaging_entry)}


@st.composite
def meta_events(draw: st.DrawFn) -> tuple[str, bytes]:
    """A Meta endpoint and an event for it: mostly well formed, odd anywhere (the other
    family's entries one time in eight)."""
    path = draw(st.sampled_from(META_ENDPOINTS))
    kind, entry = META_OBJECTS[path]
    other = messaging_entry if entry is whatsapp_entry else whatsapp_entry
    entries = st.sampled_from(range(8)).flatmap(lambda n: other if n == 7 else entry)
    event = {"object": draw(maybe(st.just(kind))), "entry": draw(lists(entries, 3))}
    return path, json.dumps(event).encode()


def test_meta_webhooks_survive_signed_events_of_any_shape(every_channel: ServerThread) -> None:
    server, names = every_channel, [channel_name(p) for p in META_ENDPOINTS]
    reached = dialogue_spy(server, names)
    statuses: list[int] = []

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(event=st.sampled_from(range(4)).flatmap(  # an event three times in four
        lambda n: st.tuples(st.sampled_from(META_ENDPOINTS), bodies) if n == 3
        else meta_events()))
    @example(event=("/webhooks/whatsapp", json.dumps({  # one of each that is answered
        "object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"metadata": {"phone_number_id": WHATSAPP_NUMBER_ID},
                                           "messages": [{"from": "4915112345678", "id": "w1",
                                                         "type": "text",
                                                         "text": {"body": "hi"}}]}}]}]}).encode()))
    @example(event=("/webhooks/messenger", json.dumps({"object": "page", "entry": [{
        "id": "1", "messaging": [{"sender": {"id": "25"}, "recipient": {"id": "1"},
                                  "message": {"mid": "m1", "text": "hi"}}]}]}).encode()))
    @example(event=("/webhooks/instagram", json.dumps({"object": "instagram", "entry": [{
        "id": "1", "messaging": [{"sender": {"id": "26"}, "recipient": {"id": "1"},
                                  "postback": {"mid": "p1", "payload": "hi"}}]}]}).encode()))
    def deliver(event: tuple[str, bytes]) -> None:
        path, body = event
        before = len(reached)
        status, raw = server.post(path, body, "application/json",
                                  headers=signed_headers(path, body))
        settle(server, names)
        assert status < 500, (path, body[:300], status, raw[:300])
        statuses.append(status)
        if status == 200:
            assert json.loads(raw)["ok"] is True
        else:
            assert status in (400, 413) and error_of(raw), (path, status, raw[:300])
            assert len(reached) == before, "a rejected event reached the dialogue"

    deliver()
    assert statuses.count(200) >= 20 and statuses.count(400) >= 20, sorted(set(statuses))
    assert {m.channel for m in reached} == {"whatsapp", "messenger", "instagram"}


TWILIO_BASE = {"AccountSid": TWILIO_ACCOUNT, "From": "+14155550100", "To": "+18005551212",
               "Body": "my card has not arrived", "NumMedia": "0", "SmsStatus": "received"}
twilio_values = st.one_of(
    hostile_bytes, st.binary(max_size=20),
    st.sampled_from([TWILIO_ACCOUNT, "AC" + "f" * 32, "received", "delivered", "", "0", "3",
                     "+14155550100", "whatsapp:+14155550100", "x" * 5000]).map(str.encode))
numbers = st.one_of(odd_digits, st.sampled_from(
    ["9" * 5000, "-1", "+1", "1_000", " 2", "1e9", "0x10", "\u00b2", "\u0663", "NaN"])).map(
    str.encode)
twilio_fields = st.sampled_from([*TWILIO_BASE, "MessageSid", "SmsMessageSid", "Latitude",
                                 "MediaUrl0", "WaId", "ProfileName", "Body\x00", "\u00e9"])


def form_body(pairs: list[tuple[str, bytes]]) -> bytes:
    return "&".join(quote_plus(name.encode("utf-8", "surrogatepass")) + "=" + quote_plus(value)
                    for name, value in pairs).encode()


@st.composite
def twilio_forms(draw: st.DrawFn) -> bytes:
    """An incoming-message form with some fields changed, dropped, repeated or added."""
    fields = {name: value.encode() for name, value in TWILIO_BASE.items()}
    fields["MessageSid"] = f"SM{uuid.uuid4().hex}".encode()
    fields["NumMedia"] = draw(st.just(b"0") | numbers)
    fields |= draw(st.dictionaries(twilio_fields, twilio_values, max_size=3))
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2)):
        fields.pop(name, None)
    extra = draw(st.lists(st.tuples(twilio_fields, twilio_values), max_size=2))
    return form_body([*fields.items(), *extra])


def test_twilio_survives_signed_forms_and_bytes(every_channel: ServerThread) -> None:
    server, (path,) = every_channel, FORM_ENDPOINTS
    reached = dialogue_spy(server, ["twilio"])
    statuses: list[int] = []

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=st.sampled_from(range(4)).flatmap(  # a form three times in four
        lambda n: st.binary(max_size=300) | bodies if n == 3 else twilio_forms()))
    @example(body=form_body([(k, v.encode()) for k, v in TWILIO_BASE.items()] + [
        ("MessageSid", b"SM-huge-count"), ("NumMedia", b"9" * 5000)]))  # once int(): a 500
    @example(body=form_body([(k, v.encode()) for k, v in TWILIO_BASE.items()] + [
        ("MessageSid", b"SM-answered")]))
    def deliver(body: bytes) -> None:
        before = len(reached)
        status, raw = raw_request(server.port, "POST", path.encode(), body=body, headers={
            k.encode(): v.encode() for k, v in signed_headers(path, body).items()})
        settle(server, ["twilio"])
        assert status < 500, (body[:300], status, raw[:300])
        statuses.append(status)
        if status == 200:
            assert raw.endswith(b"<Response/>"), raw[:300]
        else:
            assert status in (400, 403, 413) and error_of(raw), (status, raw[:300])
            assert len(reached) == before, "a rejected message reached the dialogue"

    deliver()
    assert statuses.count(200) >= 20 and statuses.count(400) >= 10, sorted(set(statuses))
    assert reached, "no message of the fuzz was answered: the forms are too broken"


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _names_a_key(header: str) -> bool:
    """Whether a JWT header would send the bot to fetch the connector's keys (RS256 and a
    key id): with the keys out of reach that is a 503, tested on its own below."""
    try:
        parsed = json.loads(header)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("alg") == "RS256" \
        and isinstance(parsed.get("kid"), str) and bool(parsed["kid"])


jwt_headers = st.one_of(
    st.sampled_from([{"alg": "none", "typ": "JWT"}, {"alg": "HS256", "kid": "key-1"},
                     {"alg": "RS256"}, {"alg": "RS256", "kid": 7}, {"alg": "RS256", "kid": ""},
                     {"alg": "RS256", "kid": ["key-1"]}, {"alg": "RS256", "kid": None}]).map(
        json.dumps),
    shapes, st.just('{"alg": "RS256", "kid": ' + "9" * 5000 + "}"),
).filter(lambda header: not _names_a_key(header))
garbage_jwts = st.tuples(jwt_headers, shapes, st.binary(max_size=64)).map(
    lambda t: b"Bearer " + b".".join([_b64(t[0].encode("utf-8", "surrogatepass")),
                                      _b64(t[1].encode("utf-8", "surrogatepass")), _b64(t[2])]))
garbage_auth = st.one_of(
    st.none(), hostile_bytes, hostile_bytes.map(lambda b: b"Bearer " + b), garbage_jwts,
    st.sampled_from([b"Bearer", b"Bearer ", b"Basic dXNlcjpwYXNz", b"bearer a.b.c",
                     b"Bearer " + b"a" * 9000]))


@st.composite
def forged(draw: st.DrawFn) -> tuple[str, bytes, dict[bytes, bytes]]:
    """A request to a platform channel without its valid signature or token: missing,
    garbage, for another secret, for another body or URL."""
    path = draw(st.sampled_from(META_ENDPOINTS + FORM_ENDPOINTS + TOKEN_ENDPOINTS))
    if path in META_ENDPOINTS:
        body = draw(meta_events().map(lambda event: event[1]) | bodies)
        header, valid = b"X-Hub-Signature-256", meta_signature(body).encode()
        wrong = draw(st.one_of(st.none(), hostile_bytes, st.sampled_from([
            meta_signature(body + b" ").encode(), valid.replace(b"sha256=", b"sha1="),
            valid.upper(), valid[:-1], b"sha256=" + b"0" * 64, valid + b"\xff"])))
    elif path in FORM_ENDPOINTS:
        body = draw(twilio_forms() | st.binary(max_size=200))
        params = draw(st.sampled_from([[], [("AccountSid", TWILIO_ACCOUNT)]]))
        header = b"X-Twilio-Signature"
        wrong = draw(st.one_of(st.none(), hostile_bytes, st.sampled_from([
            twilio_signature("another-auth-token", TWILIO_URL, params).encode(),
            twilio_signature(TWILIO_AUTH_TOKEN, TWILIO_URL, params).encode(),
            twilio_signature(TWILIO_AUTH_TOKEN, "https://evil.example.com/webhooks/twilio",
                             params).encode()])))
        if wrong is not None and wrong == signed_headers(path, body)[
                "X-Twilio-Signature"].encode():
            wrong = None  # the body happened to parse to exactly ``params``: not a forgery
    else:
        body = draw(bodies | st.binary(max_size=200))
        header, wrong = b"Authorization", draw(garbage_auth)
    headers = {b"Content-Type": draw(st.sampled_from(
        [b"application/json", b"application/x-www-form-urlencoded"] * 3 + [b"\xff"]))}
    return path, body, headers if wrong is None else {**headers, header: wrong}


def test_unsigned_and_forged_platform_requests_are_refused_before_the_dialogue(
        every_channel: ServerThread) -> None:
    server = every_channel
    names = [channel_name(p) for p in META_ENDPOINTS + FORM_ENDPOINTS + TOKEN_ENDPOINTS]
    reached = dialogue_spy(server, names)
    statuses: list[int] = []
    teams_errors: set[str] = set()

    @settings(max_examples=250, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request=forged())
    @example(request=("/webhooks/teams", b"{}", {b"Authorization": b"Bearer " + b".".join(
        [_b64(b'{"alg": "none"}'), _b64(b'{"aud": "x"}'), b""])}))
    @example(request=("/webhooks/teams", b"{}", {b"Authorization": b"Bearer " + b".".join(
        [_b64(b'{"alg": "RS256"}'), _b64(b'{"aud": "x"}'), _b64(b"sig")])}))
    @example(request=("/webhooks/teams", b"\xff", {b"Authorization": b"Bearer " + b".".join(
        [_b64(b"[" * 2000 + b"]" * 2000), _b64(b"{}"), _b64(b"sig")])}))
    def send(request: tuple[str, bytes, dict[bytes, bytes]]) -> None:
        path, body, headers = request
        status, raw = raw_request(server.port, "POST", path.encode(), body=body,
                                  headers=headers)
        statuses.append(status)
        if path in TOKEN_ENDPOINTS and raw.startswith(b"{"):
            teams_errors.add(error_of(raw).split(":")[0])
        if status == 400 and not raw.startswith(b"{"):
            return  # aiohttp's HTTP parser refused a header's bytes
        # Meta and Twilio sign the body, so they read it first (413 when too large); Twilio
        # signs the form's fields, so it parses it first (400 when it is no UTF-8 form).
        refusals = {**dict.fromkeys(META_ENDPOINTS, (401, 413)),
                    **dict.fromkeys(FORM_ENDPOINTS, (400, 401, 413))}.get(path, (401,))
        assert status in refusals, (path, headers, body[:200], status, raw[:300])
        assert error_of(raw)

    send()
    settle(server, names)
    assert reached == [] and statuses.count(401) >= 100, sorted(set(statuses))
    assert {"missing or malformed 'Authorization", "the bearer token is not a JWT",
            "the token must be signed with RS256", "the token names no signing key (kid)"} \
        <= teams_errors, teams_errors

    # A well-formed RS256 token naming a key while the Bot Framework's keys are out of reach
    # (openid_metadata_url is 127.0.0.1:9): 503, nothing read, the connector retries.
    header = _b64(b'{"alg": "RS256", "kid": "key-1", "typ": "JWT"}')
    token = b".".join([header, _b64(b'{"aud": "x"}'), _b64(b"signature")])
    status, raw = raw_request(server.port, "POST", b"/webhooks/teams", body=b"\xff" * 100,
                              headers={b"Authorization": b"Bearer " + token})
    assert status == 503 and "signing keys are unavailable" in error_of(raw), (status, raw)
    settle(server, names)
    assert reached == []

    async def events() -> list[Any]:
        return [e async for e in server.app[PIPELINE].store.iter_events()]

    assert server.call(events()) == []  # nothing stored either


def _verify_target(path: str, params: list[tuple[str, bytes]], raw: bool) -> bytes:
    pairs = [quoted(name.encode()) + b"=" + (value if raw else quoted(value))
             for name, value in params]
    return path.encode() + b"?" + b"&".join(pairs)


verify_names = st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge", "hub.x",
                                "hub.mode[]", "hub.verify_token "])
verify_values = st.one_of(
    st.sampled_from([b"subscribe", META_VERIFY_TOKEN.encode(), b"1158201444", b"",
                     META_VERIFY_TOKEN.encode() + b"\xc3\xa9", b"unsubscribe"]),
    hostile_bytes, st.binary(max_size=30),
    st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00", b"%", b"%zz", b"+"]),
    st.integers(1000, 9000).map(lambda n: b"7" * n))  # long, and over the request line limit


@st.composite
def verifications(draw: st.DrawFn) -> tuple[str, list[tuple[str, bytes]], bool]:
    """Meta's verification query, its keys changed, repeated (before or after the good
    ones), dropped or added."""
    good = [("hub.mode", b"subscribe"), ("hub.verify_token", META_VERIFY_TOKEN.encode()),
            ("hub.challenge", draw(st.sampled_from([b"1158201444", b"\xc3\xa9t\xc3\xa9"])))]
    good = [pair for pair in good if draw(st.integers(0, 5))]  # each dropped one time in six
    before = draw(st.lists(st.tuples(verify_names, verify_values), max_size=3))
    after = draw(st.lists(st.tuples(verify_names, verify_values), max_size=3))
    return draw(st.sampled_from(META_ENDPOINTS)), before + good + after, draw(
        st.sampled_from([False] * 9 + [True]))  # raw: the bytes unescaped in the URL


def test_meta_verification_survives_hostile_query_strings(every_channel: ServerThread) -> None:
    server = every_channel
    statuses: list[int] = []

    @settings(max_examples=250, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request=verifications())
    def verify(request: tuple[str, list[tuple[str, bytes]], bool]) -> None:
        path, params, raw_bytes = request
        target = _verify_target(path, params, raw_bytes)
        status, raw = raw_request(server.port, "GET", target)
        assert status < 500, (target[:300], status, raw[:300])
        statuses.append(status)
        if status == 400 and not raw.startswith(b"{"):
            assert raw_bytes or len(target) > 8000, (target[:300], raw[:300])  # the parser
            return
        if raw_bytes:
            assert status in (200, 400, 403), (target[:300], status, raw[:300])
            assert status == 200 or error_of(raw)
            return
        query = URL(target.decode("ascii"), encoded=True).query  # as aiohttp reads it
        challenge = query.get("hub.challenge", "")
        if query.get("hub.verify_token") != META_VERIFY_TOKEN:  # the first one counts
            assert status == 403 and "verify_token" in error_of(raw), (target[:300], raw)
        elif query.get("hub.mode") == "subscribe" and challenge and not any(
                unicodedata.category(c) in ("Cc", "Cs") for c in challenge):
            assert status == 200 and raw.decode() == challenge, (target[:300], status, raw)
        else:
            assert status == 400 and error_of(raw), (target[:300], status, raw[:300])

    verify()
    assert {200, 400, 403} <= set(statuses), sorted(set(statuses))
