"""The e-mail channel against a real mail server (dovecot IMAP + an aiosmtpd SMTP server,
tests/channels/mailserver.py) and the real dialogue of the channel tests."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from channels.email import EmailChannel
from channels.mail_text import ATTACHMENT_NOTE, thread_sender
from channels.registry import CHANNELS, channel_settings
from foundation.errors import ChannelError
from foundation.messages import BotReply
from foundation.settings import Where

from .mailserver import DOMAIN, MISSING, MailServer, make_certificates, new_server
from .support import Serve, session_of, user_texts

BOT = f"bot@{DOMAIN}"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
ALICE = f"alice@{DOMAIN}"


def needs_servers() -> None:
    if shutil.which("dovecot") is None:
        pytest.skip(MISSING)
    pytest.importorskip("aiosmtpd", reason="aiosmtpd is a dev dependency: pip install -e .[dev]")


@pytest.fixture
def mail() -> Iterator[MailServer]:
    needs_servers()
    server = new_server()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def settings(mail: MailServer, **extra: Any) -> dict[str, Any]:
    return {"email": {
        "address": f"Acme Help <{BOT}>",
        "imap": {"host": "127.0.0.1", "port": mail.imap_port, "tls": "none",
                 "user": "bot", "password": "${BOT_MAIL_PASSWORD}"},
        "smtp": {"host": "127.0.0.1", "port": mail.smtp_port, "tls": "none", "user": "bot"},
        "poll_s": 0.2, "retry": {"attempts": 3, "base_delay_s": 0.05, "timeout_s": 5},
        **extra}}


@pytest.fixture
async def bot(serve: Serve, mail: MailServer, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("BOT_MAIL_PASSWORD", "botpw")
    return await serve(settings(mail))


def channel(client: TestClient) -> EmailChannel:
    found = client.app[CHANNELS]["email"]
    assert isinstance(found, EmailChannel)
    return found


def mail_from(sender: str, text: str, *, subject: str = "My card",
              reply_to: EmailMessage | None = None, **headers: str) -> EmailMessage:
    """A customer's mail; a reply to ``reply_to`` threads as mail clients do."""
    message = EmailMessage()
    message["From"] = f"{sender.split('@')[0].title()} Example <{sender}>"
    message["To"] = BOT
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="client.example.test")
    message["Date"] = "Mon, 04 May 2026 10:00:00 +0200"
    if reply_to is not None:  # the lazy client: "Re: Re: ..." (the bot's reply says "Re:")
        del message["Subject"]
        message["Subject"] = f"Re: {reply_to['Subject']}"
        message["In-Reply-To"] = reply_to["Message-ID"]
        message["References"] = " ".join(
            [*str(reply_to.get("References", "")).split(), reply_to["Message-ID"]])
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


def body(message: EmailMessage) -> str:
    return message.get_content()  # type: ignore[no-any-return]


async def test_a_three_message_thread_stays_one_conversation(
        bot: TestClient, mail: MailServer) -> None:
    first = mail_from(ALICE, "Hi,\n\nmy card has not arrived yet.\n\n-- \nAlice Example\n"
                             "Example Ltd, 1 Main Street")
    await mail.send(first)
    (reply1,) = await mail.wait_for("alice", 1)
    assert reply1["Subject"] == "Re: My card"
    assert reply1["In-Reply-To"] == first["Message-ID"]
    assert reply1["References"] == first["Message-ID"]
    assert reply1["Auto-Submitted"] == "auto-replied"
    assert reply1["From"] == f"Acme Help <{BOT}>" and reply1["To"] == ALICE
    assert body(reply1).startswith("Cards arrive within 5-7 working days")
    assert "Sources: My card has not arrived yet" in body(reply1)
    assert "> my card has not arrived yet." in body(reply1)  # quoted below, as clients do
    assert "Example Ltd" not in body(reply1)  # the signature was not part of the question
    assert channel(bot).idling  # dovecot has IDLE

    second = mail_from(ALICE, "Thanks. How do I reset my PIN?\n\n"
                              f"On Mon, 4 May 2026 at 10:01, Acme Help <{BOT}> wrote:\n"
                              + "\n".join(f"> {line}" for line in body(reply1).splitlines()),
                       reply_to=reply1)
    await mail.send(second)
    reply2 = (await mail.wait_for("alice", 2))[1]
    assert reply2["Subject"] == "Re: My card"  # not "Re: Re: My card"
    assert reply2["In-Reply-To"] == second["Message-ID"]
    assert reply2["References"].split() == [first["Message-ID"], reply1["Message-ID"],
                                            second["Message-ID"]]
    assert "Card settings" in body(reply2)

    third = mail_from(ALICE, "And how long does a bank transfer take?\n\n"
                             "-----Original Message-----\nFrom: Acme Help\n"
                             f"Sent: Monday\n\n{body(reply2)}", reply_to=reply2)
    await mail.send(third)
    reply3 = (await mail.wait_for("alice", 3))[2]
    assert reply3["References"].split()[0] == first["Message-ID"]
    assert "same day" in body(reply3)

    sender = thread_sender(ALICE, first["Message-ID"])
    assert await user_texts(bot, f"email:{sender}") == [
        "Hi, my card has not arrived yet.", "Thanks. How do I reset my PIN?",
        "And how long does a bank transfer take?"]
    history = (await session_of(bot, f"email:{sender}")).history
    assert [turn["role"] for turn in history] == ["user", "bot"] * 3
    assert len(await mail.wait_for("bot", 3, seen=True)) == 3  # all read

    # someone else copying the thread's headers gets a conversation of their own
    intruder = mail_from(f"mallory@{DOMAIN}", "Where is my card?", reply_to=reply3)
    await mail.send(intruder, user="mallory")
    (answer,) = await mail.wait_for("mallory", 1)
    assert answer["To"] == f"mallory@{DOMAIN}"
    theirs = thread_sender(f"mallory@{DOMAIN}", first["Message-ID"])
    assert await user_texts(bot, f"email:{theirs}") == ["Where is my card?"]
    assert len(await user_texts(bot, f"email:{sender}")) == 3
    assert len(await mail.inbox("alice")) == 3


async def test_machines_bounces_and_lists_are_not_answered(
        serve: Serve, mail: MailServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_MAIL_PASSWORD", "botpw")
    client = await serve(settings(mail, idle=False))  # polling this time
    machine_mail = [
        mail_from(ALICE, "I am out of the office.", Auto_Submitted="auto-replied"),
        mail_from(ALICE, "Out of office", X_Autoreply="yes"),
        mail_from(ALICE, "Out of office", X_Autorespond="yes"),
        mail_from(ALICE, "Our newsletter", Precedence="bulk"),
        mail_from(ALICE, "Vacation", Precedence="auto_reply"),
        mail_from(ALICE, "A list post", List_Id="<news.example.test>"),
        mail_from(ALICE, "Unsubscribe below", List_Unsubscribe="<mailto:u@example.test>"),
        mail_from(BOT, "my card has not arrived"),  # the bot's own address
    ]
    for message in machine_mail:
        mail.deliver(message.as_bytes(), mail_from=ALICE, to=[BOT])
    bounce = mail_from(f"MAILER-DAEMON@{DOMAIN}", "Delivery failed: my card has not arrived")
    mail.deliver(bounce.as_bytes(), mail_from="", to=[BOT])  # Return-Path: <>
    report = EmailMessage()
    report["From"] = f"postmaster@{DOMAIN}"
    report["To"] = BOT
    report["Subject"] = "Delivery Status Notification (Failure)"
    report.set_content("Your message could not be delivered.")
    report.add_attachment("Reporting-MTA: dns; example.test\n", subtype="delivery-status")
    report.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; '
                          f'boundary="{report.get_boundary()}"')
    mail.deliver(report.as_bytes(), mail_from=f"postmaster@{DOMAIN}", to=[BOT])
    person = mail_from(ALICE, "my card has not arrived")
    mail.deliver(person.as_bytes(), mail_from=ALICE, to=[BOT])

    (reply,) = await mail.wait_for("alice", 1)
    assert reply["In-Reply-To"] == person["Message-ID"]
    assert len(await mail.wait_for("bot", len(machine_mail) + 3, seen=True)) == 11
    assert [s.rcpt_tos for s in mail.sent] == [[ALICE]]  # nothing sent to anyone else
    assert not channel(client).idling
    assert await user_texts(client, f"email:{thread_sender(ALICE, person['Message-ID'])}") \
        == ["my card has not arrived"]


async def test_html_mail_is_read_as_text_and_attachments_are_acknowledged(
        bot: TestClient, mail: MailServer) -> None:
    message = mail_from(ALICE, "")
    message.set_content(
        "<html><head><style>p {color: red}</style></head><body>"
        "<p>Hello,</p><p>my card has <b>not arrived</b> yet.</p>"
        '<div class="gmail_quote">On Mon, 4 May 2026 Bob wrote:<blockquote>how to reset '
        "my PIN</blockquote></div></body></html>", subtype="html")
    message.add_attachment(b"%PDF-1.4 not really", maintype="application", subtype="pdf",
                           filename="statement.pdf")
    await mail.send(message)
    (reply,) = await mail.wait_for("alice", 1)
    assert body(reply).startswith("Cards arrive within")
    assert ATTACHMENT_NOTE in body(reply)
    sender = thread_sender(ALICE, message["Message-ID"])
    assert await user_texts(bot, f"email:{sender}") == ["Hello, my card has not arrived yet."]


async def test_a_message_is_answered_once_even_when_seen_twice(
        bot: TestClient, mail: MailServer) -> None:
    message = mail_from(ALICE, "my card has not arrived")
    mail.deliver(message.as_bytes(), mail_from=ALICE, to=[BOT])
    mail.deliver(message.as_bytes(), mail_from=ALICE, to=[BOT])  # delivered twice
    await mail.wait_for("alice", 1)
    await mail.wait_for("bot", 2, seen=True)
    uid = (await mail.inbox("bot"))[0][0]
    await mail.unsee("bot", uid)  # the loop will see it again (as after a failed \Seen)
    await mail.wait_for("bot", 2, seen=True)
    later = mail_from(ALICE, "how do I reset my PIN")  # a new message is still answered
    await mail.send(later)
    messages = await mail.wait_for("alice", 2)
    assert [m["In-Reply-To"] for m in messages] == [message["Message-ID"], later["Message-ID"]]


async def test_agent_replies_go_to_the_conversation_thread(
        bot: TestClient, mail: MailServer) -> None:
    first = mail_from(ALICE, "my card has not arrived", subject="Card")
    await mail.send(first)
    await mail.wait_for("alice", 1)
    email = channel(bot)
    sender = thread_sender(ALICE, first["Message-ID"])
    await email.push(sender, BotReply(text="Hi, this is Sam from the card team."))
    await email.push(ALICE, BotReply(text="Your new card is on its way."))  # last thread
    pushed = (await mail.wait_for("alice", 3))[1:]
    for message in pushed:
        assert message["In-Reply-To"] == first["Message-ID"]
        assert message["Subject"] == "Re: Card"
        assert message["Auto-Submitted"] == "auto-replied"
    assert body(pushed[0]).strip() == "Hi, this is Sam from the card team."
    await email.push(f"carol@{DOMAIN}", BotReply(text="We tried to call you."))
    (new,) = await mail.wait_for("carol", 1)
    assert new["Subject"] == "Your message to us" and new["In-Reply-To"] is None
    with pytest.raises(ChannelError):
        await email.push("not-an-address", BotReply(text="hello"))


async def test_the_channel_reconnects_when_the_server_drops_it(
        bot: TestClient, mail: MailServer) -> None:
    await mail.send(mail_from(ALICE, "my card has not arrived"))
    await mail.wait_for("alice", 1)
    mail.kick("bot")
    await mail.send(mail_from(ALICE, "how do I reset my PIN"))
    messages = await mail.wait_for("alice", 2, timeout=120)  # reconnecting under load
    assert "Card settings" in body(messages[1])


async def test_a_wrong_password_is_retried_and_logged_not_fatal(
        serve: Serve, mail: MailServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("BOT_MAIL_PASSWORD", "n0t-the-pa55word")
    client = await serve(settings(mail))
    assert (await client.get("/health")).status == 200  # the server runs all the same
    for _ in range(100):
        if "IMAP login failed" in caplog.text:
            break
        await asyncio.sleep(0.1)
    assert "IMAP login failed" in caplog.text
    assert "n0t-the-pa55word" not in caplog.text


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
async def test_tls_to_both_servers_with_the_certificates_checked(
        serve: Serve, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    needs_servers()
    server = new_server()
    ca, cert, key = make_certificates(server.root)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    try:
        server.start(cert=(cert, key), smtp_tls=context)
        monkeypatch.setenv("BOT_MAIL_PASSWORD", "botpw")
        config = settings(server)
        config["email"]["imap"] |= {
            "host": "localhost", "tls": mode, "ca_file": str(ca),
            "port": server.imaps_port if mode == "ssl" else server.imap_port}
        config["email"]["smtp"] |= {
            "host": "localhost", "tls": mode, "ca_file": str(ca),
            "port": server.smtps_port if mode == "ssl" else server.smtp_port}
        await serve(config)
        message = mail_from(ALICE, "my card has not arrived")
        server.deliver(message.as_bytes(), mail_from=ALICE, to=[BOT])
        (reply,) = await server.wait_for("alice", 1)
        assert reply["In-Reply-To"] == message["Message-ID"]
        assert [sent.user for sent in server.sent] == ["bot"]
    finally:
        server.stop()


async def test_a_certificate_that_is_not_trusted_is_refused(
        serve: Serve, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    needs_servers()
    server = new_server()
    _ca, cert, key = make_certificates(server.root)
    try:
        server.start(cert=(cert, key))
        monkeypatch.setenv("BOT_MAIL_PASSWORD", "botpw")
        config = settings(server)
        config["email"]["imap"] |= {"host": "localhost", "tls": "ssl", "port": server.imaps_port}
        await serve(config)  # no ca_file: the system's CAs do not know the test CA
        for _ in range(100):
            if "CERTIFICATE_VERIFY_FAILED" in caplog.text:
                break
            await asyncio.sleep(0.1)
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    finally:
        server.stop()


def offline_channel(**extra: Any) -> tuple[EmailChannel, list[EmailMessage], list[str]]:
    """A channel that is not connected, whose outgoing mail is recorded: the channel, the
    mail it sent and the texts its dialogue was asked."""
    config = {"address": BOT, "imap": {"host": "127.0.0.1", "tls": "none", "password": "x"},
              "smtp": {"host": "127.0.0.1", "tls": "none"}, **extra}
    settings_ = channel_settings("email", config, Where("bot.yaml", "channels.email"))
    sent: list[EmailMessage] = []
    asked: list[str] = []

    async def on_message(message: Any) -> BotReply:
        asked.append(message.text)
        return BotReply(text="Thanks for your message.")

    email = EmailChannel(settings_, on_message=on_message, on_stream=None)  # type: ignore[arg-type]

    async def record(message: EmailMessage) -> None:
        sent.append(message)

    email.send = record  # type: ignore[method-assign]
    return email, sent, asked


async def test_a_mail_with_only_files_gets_the_note_without_a_turn() -> None:
    email, sent, asked = offline_channel()
    message = mail_from(ALICE, "", subject="")
    message.clear_content()
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="card.png")
    await email.handle(message.as_bytes(), fallback_id="<f@x>")
    (reply,) = sent
    assert asked == [] and body(reply).startswith(ATTACHMENT_NOTE)
    assert reply["Subject"] == "Re: your message"
    nothing = mail_from(ALICE, "", subject="")
    await email.handle(nothing.as_bytes(), fallback_id="<g@x>")
    assert len(sent) == 1  # an empty mail is not answered
    await email.close()


async def test_replies_to_one_address_are_capped_so_loops_end() -> None:
    email, sent, _asked = offline_channel(max_replies_per_hour=3)
    for i in range(5):  # an answering machine that does not say it is one
        await email.handle(mail_from(ALICE, f"Thank you for your mail ({i})").as_bytes(),
                           fallback_id=f"<{i}@imap.invalid>")
    assert len(sent) == 3
    await email.handle(mail_from(f"carol@{DOMAIN}", "my card").as_bytes(), fallback_id="<c@x>")
    assert len(sent) == 4  # others are still answered
    await email.close()
