"""The e-mail channel's text functions (channels/mail_text.py): no server needed."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from channels.email import EmailSettings
from channels.mail_text import (
    ATTACHMENT_NOTE,
    body_text,
    clean_body,
    compose,
    html_to_text,
    ignore_reason,
    read_message,
    reply_subject,
    strip_quoted,
    strip_signature,
    thread_root,
    thread_sender,
)
from channels.registry import channel_settings
from foundation.errors import ConfigError
from foundation.settings import Where

BOT = "help@acme.example"


def message(text: str = "Hello", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Ann Example <ann@example.com>"
    msg["To"] = BOT
    msg["Subject"] = "Question"
    msg["Message-ID"] = "<m1@example.com>"
    for name, value in headers.items():
        del msg[name.replace("_", "-")]
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


def test_gmail_and_apple_quotes_are_cut_but_inline_answers_kept() -> None:
    gmail = ("Thanks, that worked.\n\nOn Mon, 4 May 2026 at 10:00, Acme Help <help@acme.example>"
             " wrote:\n> Open the app\n> and reset it.\n")
    assert strip_quoted(gmail).strip() == "Thanks, that worked."
    wrapped = ("Still nothing.\n\nOn Mon, 4 May 2026 at 10:00, Acme Help <\n"
               "help@acme.example> wrote:\n\n> Cards arrive within 5 days.\n")
    assert strip_quoted(wrapped).strip() == "Still nothing."
    bottom = ("On 4 May 2026, Acme wrote:\n> Which card?\n\nThe blue one.\n> And the PIN?\n"
              "Not yet.")
    assert strip_quoted(bottom).split() == ["The", "blue", "one.", "Not", "yet."]
    unquoted_history = "Ok!\n\nOn 4 May 2026 at 10:00, Acme <help@acme.example> wrote:\nOld text"
    assert strip_quoted(unquoted_history).strip() == "Ok!"
    story = "My colleague wrote:\nthe card is blocked. Can you check?"
    assert strip_quoted(story) == story  # no quote follows: it is the customer's text


def test_outlook_history_blocks_are_cut() -> None:
    original = "Please cancel it.\n\n-----Original Message-----\nFrom: Acme\nSent: Monday\nOld"
    assert strip_quoted(original).strip() == "Please cancel it."
    header_block = ("Please cancel it.\n\n________________________________\n"
                    "From: Acme Help <help@acme.example>\nSent: Monday, May 4, 2026 10:00\n"
                    "To: Ann\nSubject: RE: Card\n\nCards arrive within 5 days.")
    assert strip_quoted(header_block) == "Please cancel it."
    german = "Danke.\n\nVon: Acme\nGesendet: Montag\nAn: Ann\n\nAlt"
    assert strip_quoted(german) == "Danke."
    assert strip_quoted("From: my phone\nI lost it.") == "From: my phone\nI lost it."


def test_signatures_and_phone_footers_are_cut() -> None:
    assert strip_signature("Where is it?\n-- \nAnn\n+1 555 0100") == "Where is it?"
    assert strip_signature("Where is it?\n--\nAnn") == "Where is it?"  # trailing space lost
    assert strip_signature("Where is it?\n\nSent from my iPhone") == "Where is it?\n"
    assert strip_signature("a -- b\n--- not one") == "a -- b\n--- not one"
    assert clean_body("Hi\r\n\r\n\r\n\r\nthere\r\n-- \r\nAnn\r\n") == "Hi\n\nthere"


def test_html_is_read_as_text_without_scripts_styles_and_quotes() -> None:
    html = ("<html><head><title>t</title><style>p{}</style><script>alert(1)</script></head>"
            "<body><p>My card&nbsp;is <b>blocked</b>.</p><div>Line one<br>Line two</div>"
            "<blockquote>old question</blockquote>"
            '<div class="gmail_quote">On Mon Acme wrote: old answer</div></body></html>')
    text = html_to_text(html)
    assert clean_body(text) == "My card is blocked.\n\nLine one\nLine two"
    outlook = ('<div>Cancel it please</div><div id="appendonsend"></div><hr>'
               '<div id="divRplyFwdMsg">From: Acme Sent: Monday</div><div>old reply</div>')
    assert clean_body(html_to_text(outlook)) == "Cancel it please"


def test_plain_text_is_preferred_and_attachments_are_listed_not_read() -> None:
    msg = message("Plain words")
    msg.add_alternative("<p>HTML words</p>", subtype="html")
    msg.add_attachment(b"PK\x03\x04", maintype="application", subtype="zip",
                       filename="photos.zip")
    text, attachments = body_text(msg)
    assert text == "Plain words" and attachments == ("photos.zip",)
    html_only = message()
    html_only.set_content("<p>Only <i>HTML</i></p>", subtype="html")
    assert body_text(html_only) == ("Only HTML", ())
    logo = message()
    logo.set_content("<p>Hi <img src='cid:logo'></p>", subtype="html")
    logo.add_related(b"\x89PNG", maintype="image", subtype="png", cid="<logo>")
    assert body_text(logo) == ("Hi", ())  # an inline logo is no attachment
    forwarded = message("See below")
    forwarded.add_attachment(message("secret instructions"))  # message/rfc822
    assert body_text(forwarded)[0] == "See below" and len(body_text(forwarded)[1]) == 1


def test_unknown_charsets_and_broken_bytes_do_not_fail() -> None:
    raw = (b"From: ann@example.com\r\nMessage-ID: <x@y>\r\nContent-Type: text/plain; "
           b"charset=x-unknown\r\n\r\ncaf\xe9 \xff\r\n")
    msg = message_from_bytes(raw, policy=policy.default)
    assert body_text(msg)[0].startswith("caf")


def test_threads_are_keyed_by_root_and_sender() -> None:
    root = message(Message_ID="<c@x>", References="<a@x> <b@x>", In_Reply_To="<b@x>")
    assert thread_root(root) == "<a@x>"
    assert thread_root(message(Message_ID="<c@x>", In_Reply_To="<b@x>")) == "<b@x>"
    assert thread_root(message(Message_ID="<c@x>")) == "<c@x>"
    ann = thread_sender("Ann@Example.com", "<a@x>")
    assert ann.startswith("ann@example.com#") and ann == thread_sender("ann@example.com", "<a@x>")
    assert ann != thread_sender("eve@example.com", "<a@x>")
    assert ann != thread_sender("ann@example.com", "<other@x>")
    incoming = read_message(root, fallback_id="<f@x>")
    assert incoming.sender == ann and incoming.references == ("<a@x>", "<b@x>")
    assert read_message(message(Message_ID=""), fallback_id="<f@x>").message_id == "<f@x>"


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, None),
    ({"Auto_Submitted": "no"}, None),
    ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted"),
    ({"Auto_Submitted": "auto-generated; owner-email=x@y"}, "Auto-Submitted"),
    ({"X_Autoreply": "yes"}, "X-Autoreply"),
    ({"X_Autorespond": "vacation"}, "X-Autorespond"),
    ({"Precedence": "bulk"}, "Precedence"),
    ({"Precedence": "Junk"}, "Precedence"),
    ({"Precedence": "list"}, "Precedence"),
    ({"Precedence": "auto_reply"}, "Precedence"),
    ({"Precedence": "first-class"}, None),
    ({"Return_Path": "<>"}, "bounce"),
    ({"Return_Path": "<ann@example.com>"}, None),
    ({"List_Id": "News <news.example.com>"}, "mailing list"),
    ({"List_Unsubscribe": "<mailto:u@example.com>"}, "mailing list"),
])
def test_machine_mail_is_recognised(headers: dict[str, str], reason: str | None) -> None:
    found = ignore_reason(message(**headers), BOT)
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_bounces_and_own_mail_are_recognised() -> None:
    for sender in ("MAILER-DAEMON@mx.example.com", "postmaster@example.com"):
        msg = message()
        msg.replace_header("From", sender)
        assert "bounce" in str(ignore_reason(msg, BOT))
    own = message()
    own.replace_header("From", f"Acme <{BOT.upper()}>")
    assert "own address" in str(ignore_reason(own, BOT))
    report = message()
    report.make_mixed()
    report.replace_header("Content-Type", 'multipart/report; report-type=delivery-status; '
                          f'boundary="{report.get_boundary()}"')
    assert "report" in str(ignore_reason(report, BOT))
    nobody = message()
    del nobody["From"]
    assert ignore_reason(nobody, BOT) == "no From address"


def test_replies_thread_and_say_they_are_automatic() -> None:
    assert reply_subject("Card") == "Re: Card"
    assert reply_subject("RE: re: Aw: Card") == "Re: Card"
    assert reply_subject("") == "Re: your message"
    incoming = read_message(message("my card\nis late", References="<r@x>", Date="Mon"),
                            fallback_id="<f@x>")
    reply = compose(from_header=f"Acme <{BOT}>", to=incoming.address,
                    subject=reply_subject(incoming.subject), text="It is on its way.",
                    in_reply_to=incoming)
    assert reply["In-Reply-To"] == "<m1@example.com>"
    assert reply["References"] == "<r@x> <m1@example.com>"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Message-ID"].endswith("@acme.example>")
    assert reply.get_content() == ("It is on its way.\n\nOn Mon, ann@example.com wrote:\n"
                                   "> my card\n> is late\n")
    long_chain = read_message(message(References=" ".join(f"<{i}@x>" for i in range(30))),
                              fallback_id="<f@x>")
    chain = compose(from_header=BOT, to="a@b.c", subject="s", text="t",
                    in_reply_to=long_chain)["References"].split()
    assert len(chain) == 10 and chain[0] == "<0@x>" and chain[-1] == "<m1@example.com>"
    assert "attachments" in ATTACHMENT_NOTE


def build(raw: dict[str, Any]) -> EmailSettings:
    settings: EmailSettings = channel_settings("email", raw, Where("bot.yaml", "channels.email"))
    return settings


def test_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_PASSWORD", "app-password-1")
    good = {"address": f"Acme <{BOT}>",
            "imap": {"host": "imap.acme.example", "password": "${MAIL_PASSWORD}"},
            "smtp": {"host": "smtp.acme.example"}}
    settings = build(good)
    assert settings.own_address == BOT and settings.imap.tls == "ssl"
    assert settings.smtp.tls == "starttls" and settings.imap.folder == "INBOX"
    assert "app-password-1" not in repr(settings)
    with pytest.raises(ConfigError, match=r"channels.email.imap: tls: none .*\(localhost\)"):
        build({**good, "imap": {**good["imap"], "tls": "none"}})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"channels.email.smtp: tls: none"):
        build({**good, "smtp": {"host": "smtp.acme.example", "tls": "none"}})
    assert build({**good, "smtp": {"host": "127.0.0.1", "tls": "none"}}).smtp.tls == "none"
    with pytest.raises(ConfigError, match=r"channels.email.smtp: required"):
        build({"address": BOT, "imap": good["imap"]})
    with pytest.raises(ConfigError, match=r"channels.email.address: must be an e-mail"):
        build({**good, "address": "help desk"})
    with pytest.raises(ConfigError, match=r"channels.email.imap.tls: must be one of"):
        build({**good, "imap": {**good["imap"], "tls": "maybe"}})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"environment variable NO_SUCH_VAR is not set"):
        build({**good, "imap": {"host": "i.example", "password": "${NO_SUCH_VAR}"}})
