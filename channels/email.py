"""E-mail channel: IMAP in (IDLE where the server has it, else polling), SMTP out.

On start-up the channel logs in to the mailbox and answers every unread message of
``imap.folder``, then waits for new mail (IMAP IDLE, re-armed every few minutes; without
IDLE, or with ``idle: false``, it looks every ``poll_s`` seconds). Each message is read
(text/plain preferred, HTML read as text, quoted history and signature cut:
:mod:`channels.mail_text`), answered in its thread (``Re:`` subject, In-Reply-To,
References, ``Auto-Submitted: auto-replied``) through ``smtp``, and marked ``\\Seen``.
Auto-replies, bounces, mailing lists and the bot's own mail are marked ``\\Seen`` and not
answered; a Message-ID handled before is not answered again. Attachments are acknowledged
in the reply, never opened.

Sessions are keyed ``email:<from address>#<hash of the thread's first Message-ID>``: one
conversation per thread and person (:func:`channels.mail_text.thread_sender`), so a
customer's three mails in a thread are one conversation, and someone else who copies the
thread's headers starts their own.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, ClassVar

from aiohttp import web

from channels.delivery import Outbox, RecentIds, RetryPolicy, reply_text
from channels.mail_servers import (
    IMAP_ERRORS,
    ImapSettings,
    Mailbox,
    SmtpSettings,
    send_mail,
)
from channels.mail_text import (
    ATTACHMENT_NOTE,
    Incoming,
    address_of,
    bare_subject,
    compose,
    ignore_reason,
    read_message,
    reply_subject,
)
from channels.registry import OnMessage, OnStream
from foundation.checks import between, check, positive
from foundation.errors import ChannelError
from foundation.messages import BotReply, UserMessage

log = logging.getLogger(__name__)
IDLE_RENEW_S = 540.0  # re-arm IDLE well inside the 29 minutes servers allow (and NAT timeouts)
KNOWN_THREADS = 10_000
HOUR_S = 3600.0


def mail_address(value: Any) -> str | None:
    """Config check: an address (``help@example.com`` or ``Acme <help@example.com>``)."""
    address = parseaddr(value)[1]
    return None if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", address) else \
        "must be an e-mail address like help@example.com or 'Acme <help@example.com>'"


@dataclass(frozen=True)
class EmailSettings:
    """The bot's address (its From) and its mailbox's IMAP and SMTP servers."""

    imap: ImapSettings
    smtp: SmtpSettings
    address: str = check(mail_address)
    poll_s: float = check(positive, default=60.0)
    idle: bool = True  # false: poll every poll_s even where the server has IDLE
    subject: str = "Your message to us"  # of a mail pushed to someone with no known thread
    max_replies_per_hour: int = check(between(1, 1000), default=20)  # per address: loops end
    show_citations: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def own_address(self) -> str:
        return address_of(self.address)


class EmailChannel:
    """Answers the mail that arrives in a mailbox, in the same thread."""

    name: ClassVar[str] = "email"
    Settings: ClassVar[type[Any]] = EmailSettings

    def __init__(self, settings: EmailSettings, *, on_message: OnMessage,
                 on_stream: OnStream) -> None:
        self.settings = settings
        self.on_message = on_message
        self.outbox = Outbox(self.name, settings.retry)
        self.seen = RecentIds()  # Message-IDs handled: a copy seen again is not answered
        self.threads: OrderedDict[str, Incoming] = OrderedDict()  # sender -> last message
        self.last_thread: OrderedDict[str, str] = OrderedDict()  # address -> sender
        self.replied: OrderedDict[str, list[float]] = OrderedDict()  # address -> reply times
        self.idling = False  # whether the server's IDLE is in use (else polling)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def routes(self, prefix: str) -> list[web.AbstractRouteDef]:
        return []  # mail does not come over HTTP

    async def start(self) -> None:
        """Start reading the mailbox in the background (connection problems are retried)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="email inbox")

    async def close(self) -> None:
        task, self._task = self._task, None
        self._closing = True
        while task is not None and not task.done():  # asyncio.wait_for of Python 3.11 can
            task.cancel()  # swallow a cancellation: cancel until the task has ended
            await asyncio.wait({task}, timeout=1.0)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("email: the mailbox reader failed: %s", task.exception())
        await self.outbox.close()

    async def _run(self) -> None:
        """Read the mailbox until cancelled; reconnect with backoff when it fails."""
        failures = 0
        while not self._closing:
            mailbox = Mailbox(self.settings.imap, user=self.settings.own_address,
                              timeout_s=self.settings.retry.timeout_s)
            try:
                await mailbox.open()
                failures = 0
                await self._serve(mailbox)
            except IMAP_ERRORS as exc:
                failures += 1
                wait = self.settings.retry.delay(failures)
                log.warning("email: IMAP %s: %s: %s; reconnecting in %.1f s",
                            self.settings.imap.host, type(exc).__name__, exc, wait)
                await asyncio.sleep(wait)
            except Exception:  # a bug: keep reading mail, but not in a tight loop
                failures += 1
                log.exception("email: reading the mailbox failed")
                await asyncio.sleep(self.settings.retry.delay(failures))
            finally:
                self.idling = False
                mailbox.close()

    async def _serve(self, mailbox: Mailbox) -> None:
        """Handle the unread mail, wait for more, again, until the connection fails."""
        self.idling = self.settings.idle and mailbox.can_idle
        while not self._closing:
            await self.check(mailbox)
            if self.idling:
                await mailbox.wait_for_mail(IDLE_RENEW_S)
            else:
                await asyncio.sleep(self.settings.poll_s)

    async def check(self, mailbox: Mailbox) -> None:
        """Handle every unread message of the folder, oldest first, marking each \\Seen
        once handled (so a message is lost neither to a crash nor to a failed turn)."""
        for uid in await mailbox.unseen():
            raw = await mailbox.fetch(uid)
            if raw is None:
                log.warning("email: message %s of the folder could not be read", uid)
            else:
                try:
                    await self.handle(raw, fallback_id=mailbox.fallback_id(uid))
                except Exception:  # one message that breaks the reader must not stop the rest
                    log.exception("email: message %s of the folder could not be handled", uid)
            await mailbox.mark_seen(uid)

    async def handle(self, raw: bytes, *, fallback_id: str) -> None:
        """Answer one message (raw RFC 5322 bytes), unless it is one not to answer."""
        msg = message_from_bytes(raw, policy=policy.default)
        incoming = read_message(msg, fallback_id=fallback_id)
        if not self.seen.add(incoming.message_id):
            log.info("email: %s was handled already", incoming.message_id)
            return
        reason = ignore_reason(msg, self.settings.own_address)
        if reason is not None:
            log.info("email: not answering %s: %s", incoming.message_id, reason)
            return
        text = incoming.text or bare_subject(incoming.subject)
        if not text and not incoming.attachments:
            log.info("email: not answering %s: it has no text", incoming.message_id)
            return
        if not self._may_answer(incoming.address):
            log.warning("email: not answering %s: its sender had %d replies within the hour "
                        "(a mail loop?)", incoming.message_id,
                        self.settings.max_replies_per_hour)
            return
        if not text:  # only files: say that they cannot be read (no turn to run)
            await self._files_only(incoming)
            return
        self._remember(incoming)
        message = UserMessage(sender=incoming.sender, text=text, channel=self.name, metadata={
            "message_id": incoming.message_id, "thread": incoming.root,
            "subject": incoming.subject, "attachments": list(incoming.attachments)})

        async def send(reply: str) -> None:
            await self.reply(incoming, reply)

        await self.outbox.answer(message, on_message=self.on_message, send=send,
                                 citations=self.settings.show_citations,
                                 about=f"message {incoming.message_id}")

    def _may_answer(self, address: str) -> bool:
        """Whether ``address`` may get another reply (and count it): at most
        ``max_replies_per_hour``, so an answering machine that does not say it is one
        cannot keep a mail loop going."""
        now = time.monotonic()
        recent = [t for t in self.replied.pop(address, []) if now - t < HOUR_S]
        allowed = len(recent) < self.settings.max_replies_per_hour
        self.replied[address] = [*recent, now] if allowed else recent
        while len(self.replied) > KNOWN_THREADS:
            self.replied.popitem(last=False)
        return allowed

    def _remember(self, incoming: Incoming) -> None:
        sender = incoming.sender
        self.threads.pop(sender, None)
        self.threads[sender] = replace(incoming, text="")  # headers for push
        self.last_thread.pop(incoming.address, None)
        self.last_thread[incoming.address] = sender
        for known in (self.threads, self.last_thread):
            while len(known) > KNOWN_THREADS:
                known.popitem(last=False)

    async def _files_only(self, incoming: Incoming) -> None:
        """The attachment note alone, for a mail that has nothing else."""
        self._remember(incoming)
        try:
            await self.send(compose(from_header=self.settings.address, to=incoming.address,
                                    subject=reply_subject(incoming.subject),
                                    text=ATTACHMENT_NOTE, in_reply_to=incoming))
        except ChannelError as exc:
            log.error("email: gave up sending the reply to %s: %s", incoming.message_id, exc)

    async def reply(self, incoming: Incoming, text: str) -> None:
        """Answer ``incoming`` in its thread (its attachments acknowledged)."""
        if incoming.attachments:
            text = f"{text}\n\n{ATTACHMENT_NOTE}"
        await self.send(compose(from_header=self.settings.address, to=incoming.address,
                                subject=reply_subject(incoming.subject), text=text,
                                in_reply_to=incoming))

    async def push(self, sender: str, reply: BotReply) -> None:
        """Mail an agent's message to ``sender``: an ``address#thread`` sender in that
        thread, a bare address in the last thread it wrote in (a new mail when the thread is
        not known, e.g. after a restart); DeliveryError when it cannot be sent."""
        text = reply_text(reply, citations=self.settings.show_citations)
        thread = self.threads.get(sender) or self.threads.get(
            self.last_thread.get(sender.lower(), ""))
        if thread is not None:
            await self.send(compose(from_header=self.settings.address, to=thread.address,
                                    subject=reply_subject(thread.subject), text=text,
                                    in_reply_to=thread, quote=False))
            return
        address = address_of(sender.partition("#")[0])
        if not address:
            raise ChannelError(f"{sender!r} is not an e-mail conversation")
        await self.send(compose(from_header=self.settings.address, to=address,
                                subject=self.settings.subject, text=text))

    async def send(self, message: EmailMessage) -> None:
        """Send ``message`` through the SMTP server (retried; DeliveryError on give-up)."""
        settings = self.settings
        await send_mail(message, settings.smtp, sender=settings.own_address,
                        recipients=[address_of(message["To"])],
                        user=settings.smtp.user or settings.imap.user or settings.own_address,
                        password=settings.smtp.password or settings.imap.password,
                        retry=settings.retry)
