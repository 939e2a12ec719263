"""What an e-mail says, for the e-mail channel: the customer's own words (HTML read as text,
quoted history and signatures cut), whether a message is one to answer at all, the thread
it belongs to, and the reply that goes back.

Pure functions over :mod:`email` messages (``policy.default``): no network, no state.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import formatdate, getaddresses, make_msgid, parseaddr

from bs4 import BeautifulSoup

ATTACHMENT_NOTE = ("I can't open attachments, so I haven't looked at the file(s) you sent: "
                   "please write what they say in the message itself.")
AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
MAX_REFERENCES = 10  # the root and the last ones: enough to thread, bounded in size
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_WROTE = re.compile(r"(wrote|schrieb|a écrit|escribió|ha scritto|schreef|skrev)\s*:?\s*$",
                    re.IGNORECASE)
_ATTRIBUTION = re.compile(r"^(on|am|le|el|il|op|den|w dniu)\s", re.IGNORECASE)
_ORIGINAL = re.compile(r"^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|"
                       r"mensaje original|forwarded message)\s*-{2,}$", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\*?(from|von|de|da|van)\s*:\*?\s", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\*?(sent|date|gesendet|datum|envoyé|enviado|inviato|verzonden)"
                          r"\s*:\*?\s", re.IGNORECASE)
_MOBILE_FOOTER = re.compile(r"^(sent from my \w+|sent from (mail|outlook) for \w+|"
                            r"get outlook for \w+|von meinem \w+ gesendet)", re.IGNORECASE)
_RE_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*:\s*", re.IGNORECASE)


def address_of(value: object) -> str:
    """The lower-cased address (``local@domain``) in a From/To header value; ``""`` if none."""
    found = [addr for _name, addr in getaddresses([str(value or "")]) if "@" in addr]
    return found[0].strip().lower() if found else ""


def message_ids(value: object) -> list[str]:
    """The ``<id>`` tokens of a Message-ID, In-Reply-To or References header, in order."""
    return _MESSAGE_ID.findall(str(value or ""))


def own_id(msg: Message) -> str | None:
    """The message's own Message-ID (``<...>``), if it has one."""
    ids = message_ids(msg.get("Message-ID"))
    return ids[0] if ids else None


def thread_root(msg: Message) -> str | None:
    """The Message-ID of the thread's first message: the first of References, else
    In-Reply-To, else the message's own id."""
    for header in ("References", "In-Reply-To"):
        ids = message_ids(msg.get(header))
        if ids:
            return ids[0]
    return own_id(msg)


def thread_sender(address: str, root: str) -> str:
    """The sender id (and so the session key) of ``address``'s conversation in the thread
    rooted at ``root``: ``address#<hash of root>``. Another address writing into the same
    thread gets its own conversation, so a copied References header joins nobody else's."""
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{address.lower()}#{digest}"


def ignore_reason(msg: Message, own_address: str) -> str | None:
    """Why ``msg`` must not be answered (an auto-reply, a bounce, a mailing list, our own
    mail), or ``None`` for a message from a person. Answering machines is how mail loops."""
    sender = address_of(msg.get("From"))
    if not sender:
        return "no From address"
    if sender == own_address.lower():
        return "sent by the bot's own address"
    auto = str(msg.get("Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for header in ("X-Autoreply", "X-Autorespond"):
        if msg.get(header) is not None:
            return f"{header} header (an auto-reply)"
    precedence = str(msg.get("Precedence") or "").strip().lower()
    if precedence in AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if str(msg.get("Return-Path", "x")).strip() in ("<>", ""):
        return "empty Return-Path (a bounce)"
    if sender.partition("@")[0] in BOUNCE_SENDERS:
        return f"from {sender.partition('@')[0]} (a bounce)"
    if msg.get_content_type() == "multipart/report":
        return "a delivery or read report"
    for header in ("List-Id", "List-Unsubscribe"):
        if msg.get(header) is not None:
            return f"{header} header (a mailing list)"
    return None


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


def _leaves(part: Message) -> Iterator[tuple[bool, Message]]:
    """``(is_attachment, part)`` for each body part; an attachment is not looked into."""
    disposition = part.get_content_disposition()
    if disposition == "attachment" or part.get_content_type() == "message/rfc822":
        yield True, part
    elif part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, Message):
                yield from _leaves(sub)
    elif part.get_content_maintype() == "text":
        yield False, part
    else:  # an image referenced from the HTML (a logo) is part of the text, not a file
        yield part.get("Content-ID") is None or part.get_filename() is not None, part


def body_text(msg: Message) -> tuple[str, tuple[str, ...]]:
    """The text the customer wrote (text/plain preferred, else HTML read as text; quoted
    history and signature cut) and the names of the attachments (not opened)."""
    plain: str | None = None
    html: str | None = None
    attachments: list[str] = []
    for is_attachment, part in _leaves(msg):
        if is_attachment:
            attachments.append(part.get_filename() or part.get_content_type())
        elif part.get_content_type() == "text/plain" and plain is None:
            plain = _decoded(part)
        elif part.get_content_type() == "text/html" and html is None:
            html = _decoded(part)
    text = plain if plain is not None and plain.strip() else html_to_text(html or "")
    return clean_body(text), tuple(attachments)


def html_to_text(html: str) -> str:
    """An HTML mail body as plain text, without scripts, styles and quoted replies."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title", "blockquote"]):
        tag.decompose()
    for quote in soup.select(".gmail_quote, .yahoo_quoted"):
        quote.decompose()
    for start in soup.select("#divRplyFwdMsg, #appendonsend")[:1]:
        for later in list(start.find_all_next()):  # Outlook puts the history after it
            later.decompose()
        start.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    blocks = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
    for block in soup.find_all(blocks):
        block.insert_before("\n")
        block.insert_after("\n")
    lines = [" ".join(line.split()) for line in soup.get_text().splitlines()]
    return "\n".join(lines)


def _attribution(lines: list[str], i: int) -> int:
    """How many lines (1 or 2) an ``On <date>, <person> wrote:`` line takes at ``i``; 0
    when there is none."""
    line = lines[i].strip()
    if _WROTE.search(line):
        return 1
    if _ATTRIBUTION.match(line) and len(line) < 200 and i + 1 < len(lines) \
            and _WROTE.search(lines[i + 1].strip()):
        return 2
    return 0


def _next_text(lines: list[str], start: int) -> str:
    return next((line.strip() for line in lines[start:] if line.strip()), "")


def strip_quoted(text: str) -> str:
    """``text`` without the history a mail client quoted: lines starting with ``>`` (and
    the ``On ... wrote:`` line above them), and everything from an Outlook
    ``-----Original Message-----`` or ``From: ... Sent: ...`` block on."""
    lines = text.splitlines()
    kept: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        span = _attribution(lines, i)
        if span:
            head = " ".join(part.strip() for part in lines[i:i + span])
            if _next_text(lines, i + span).startswith(">"):
                i += span  # the '>' lines below it go too
                continue
            if _ATTRIBUTION.match(head) and re.search(r"\d|@", head):
                break  # "On 3 May, Ann <a@b> wrote:" and unquoted history: all history
        if _ORIGINAL.match(line):
            break
        if _HEADER_FROM.match(line) and any(_HEADER_SENT.match(n.strip())
                                            for n in lines[i + 1:i + 5]):
            break
        if not line.startswith(">"):
            kept.append(lines[i])
        i += 1
    while kept and (not kept[-1].strip() or set(kept[-1].strip()) <= set("_-=")):
        kept.pop()  # the separator line Outlook draws above the history
    return "\n".join(kept)


def strip_signature(text: str) -> str:
    """``text`` up to its signature: the ``-- `` line (``--`` once trailing spaces are
    trimmed) or a "Sent from my phone" footer."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.rstrip() == "--" or _MOBILE_FOOTER.match(line.strip()):
            break
        kept.append(line)
    return "\n".join(kept)


def clean_body(text: str) -> str:
    """The customer's own words: quotes and signature cut, blank runs squeezed, trimmed."""
    text = strip_signature(strip_quoted(text.replace("\r\n", "\n").replace("\r", "\n")))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


@dataclass(frozen=True)
class Incoming:
    """An e-mail to answer, as the channel keeps it: who, which thread, what they wrote."""

    address: str
    message_id: str
    root: str
    subject: str
    references: tuple[str, ...]
    text: str
    attachments: tuple[str, ...] = ()
    date: str = ""

    @property
    def sender(self) -> str:
        return thread_sender(self.address, self.root)


def read_message(msg: Message, *, fallback_id: str) -> Incoming:
    """``msg`` as an :class:`Incoming` (``fallback_id`` when it has no Message-ID)."""
    message_id = own_id(msg) or fallback_id
    references = message_ids(msg.get("References")) or message_ids(msg.get("In-Reply-To"))
    text, attachments = body_text(msg)
    return Incoming(address=address_of(msg.get("From")), message_id=message_id,
                    root=thread_root(msg) or message_id,
                    subject=" ".join(str(msg.get("Subject") or "").split()),
                    references=tuple(references), text=text, attachments=attachments,
                    date=str(msg.get("Date") or ""))


def bare_subject(subject: str) -> str:
    """``subject`` without its ``Re:`` prefixes."""
    while _RE_PREFIX.match(subject):
        subject = _RE_PREFIX.sub("", subject, count=1)
    return subject.strip()


def reply_subject(subject: str) -> str:
    """``Re: <subject>``, without piling up ``Re: Re:``."""
    bare = bare_subject(subject)
    return f"Re: {bare}" if bare else "Re: your message"


def quoted_copy(incoming: Incoming) -> str:
    """The customer's words quoted below a reply, the way mail clients do."""
    if not incoming.text:
        return ""
    when = f"On {incoming.date}, " if incoming.date else ""
    lines = [f"> {line}" if line else ">" for line in incoming.text.splitlines()]
    return f"{when}{incoming.address} wrote:\n" + "\n".join(lines)


def compose(*, from_header: str, to: str, subject: str, text: str,
            in_reply_to: Incoming | None = None, quote: bool = True) -> EmailMessage:
    """A plain-text mail from the bot, marked ``Auto-Submitted: auto-replied`` (so other
    machines do not answer it); a reply when ``in_reply_to`` is given (In-Reply-To,
    References, and with ``quote`` the customer's words quoted below)."""
    msg = EmailMessage()
    msg["From"] = from_header
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    domain = parseaddr(from_header)[1].rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(domain=domain)
    body = text
    if in_reply_to is not None:
        msg["In-Reply-To"] = in_reply_to.message_id
        chain = [*in_reply_to.references, in_reply_to.message_id]
        if len(chain) > MAX_REFERENCES:
            chain = [chain[0], *chain[-(MAX_REFERENCES - 1):]]
        msg["References"] = " ".join(chain)
        copy = quoted_copy(in_reply_to) if quote else ""
        body = f"{text}\n\n{copy}" if copy else text
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office replies to us
    msg.set_content(body + "\n")
    return msg
