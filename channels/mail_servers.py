"""The e-mail channel's servers: an IMAP mailbox to read (``aioimaplib``) and SMTP to send
(``aiosmtplib``), with their settings. TLS certificates are always checked (the system's
CAs, or ``ca_file``); ``tls: none`` is refused for anything but a server on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

import aioimaplib
import aiosmtplib

from channels.delivery import DeliveryError, RetryPolicy
from foundation.checks import between, check, non_empty
from foundation.errors import ChannelError

log = logging.getLogger(__name__)
TlsMode = Literal["ssl", "starttls", "none"]
MAX_FETCH_BYTES = 4 * 1024 * 1024  # a message is read up to here; attachments past it unread
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}


class MailboxError(ChannelError):
    """The IMAP server refused a command (login, select) or the connection broke."""


IMAP_ERRORS = (MailboxError, aioimaplib.AioImapException, OSError, TimeoutError)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost``, ``127.0.0.1``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_text(value: Any) -> str | None:
    """Config check: no control characters (they would end an IMAP command early)."""
    return "must not contain control characters" if any(
        ord(c) < 32 or ord(c) == 127 for c in value) else None


def _tls_allowed(mode: str, host: str) -> None:
    if mode == "none" and not is_loopback(host):
        raise ValueError(f"tls: none would send the password in clear text; it is allowed only "
                         f"for a server on this machine (localhost), not {host!r}")


@dataclass(frozen=True)
class ImapSettings:
    """Where mail comes in. ``port`` 0: 993 with ``tls: ssl``, else 143. ``user``: the
    bot's address unless given."""

    host: str = check(non_empty)
    password: str = check(non_empty, plain_text)
    user: str = check(plain_text, default="")
    port: int = check(between(0, 65535), default=0)
    tls: TlsMode = "ssl"
    ca_file: str = ""  # a CA bundle, for a server with its own certificate authority
    folder: str = check(non_empty, plain_text, default="INBOX")

    def __post_init__(self) -> None:
        _tls_allowed(self.tls, self.host)


@dataclass(frozen=True)
class SmtpSettings:
    """Where replies go out. ``port`` 0: 465 with ``tls: ssl``, 587 with ``starttls``, 25
    with ``none``. ``user``/``password``: the IMAP ones unless given; ``login: false`` for a
    relay that takes mail without a login."""

    host: str = check(non_empty)
    user: str = ""
    password: str = ""
    port: int = check(between(0, 65535), default=0)
    tls: TlsMode = "starttls"
    ca_file: str = ""
    login: bool = True

    def __post_init__(self) -> None:
        _tls_allowed(self.tls, self.host)


def tls_context(ca_file: str) -> ssl.SSLContext:
    """Certificates checked against the system's CAs (or ``ca_file``), host name included."""
    return ssl.create_default_context(cafile=ca_file or None)


def _said(response: Any) -> str:
    lines = [bytes(line).decode("utf-8", "replace") for line in response.lines]
    return (lines[-1] if lines else str(response.result))[:200]


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        raise MailboxError(f"IMAP {what} failed: {_said(response)}")
    return response


class Mailbox:
    """One IMAP connection to the folder the bot reads; :meth:`close` drops it."""

    def __init__(self, settings: ImapSettings, *, user: str, timeout_s: float) -> None:
        self.settings = settings
        self.user = settings.user or user
        self.timeout_s = timeout_s
        self.lost = asyncio.Event()  # the server closed the connection
        self.uidvalidity = ""
        self._client: Any = None

    async def open(self) -> None:
        """Connect (TLS as configured), log in and select the folder."""
        imap = self.settings
        context = tls_context(imap.ca_file)
        port = imap.port or (993 if imap.tls == "ssl" else 143)
        if imap.tls == "ssl":
            client = aioimaplib.IMAP4_SSL(imap.host, port, timeout=self.timeout_s,
                                          ssl_context=context)
        else:
            client = aioimaplib.IMAP4(imap.host, port, timeout=self.timeout_s)
        self._client = client
        client.protocol.conn_lost_cb = lambda _exc: self.lost.set()
        await client.wait_hello_from_server()
        if imap.tls == "starttls":
            await self._starttls(context)
        _ok(await client.login(aioimaplib.quoted(self.user), imap.password), "login")
        selected = _ok(await client.select(aioimaplib.quoted(imap.folder)),
                       f"select {imap.folder!r}")
        found = (re.search(rb"UIDVALIDITY (\d+)", bytes(line)) for line in selected.lines)
        self.uidvalidity = next((m.group(1).decode() for m in found if m), "")

    async def _starttls(self, context: ssl.SSLContext) -> None:
        """STARTTLS (RFC 3501 6.2.1) on the fresh connection, then the capabilities again:
        the ones sent before TLS cannot be trusted."""
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise MailboxError(f"the IMAP server {self.settings.host} does not offer STARTTLS")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        _ok(await asyncio.wait_for(protocol.execute(command), self.timeout_s), "STARTTLS")
        protocol.transport = await asyncio.wait_for(asyncio.get_running_loop().start_tls(
            protocol.transport, protocol, context, server_hostname=self.settings.host),
            self.timeout_s)
        await asyncio.wait_for(protocol.capability(), self.timeout_s)

    @property
    def can_idle(self) -> bool:
        return bool(self._client is not None and self._client.has_capability("IDLE"))

    def fallback_id(self, uid: int) -> str:
        """A stand-in Message-ID for message ``uid`` (for mail without one)."""
        return f"<{self.uidvalidity}.{uid}@imap.invalid>"

    async def unseen(self) -> list[int]:
        """The UIDs of the folder's unread messages, oldest first."""
        await self._client.noop()  # lets the server report mail that arrived since
        found = _ok(await self._client.uid_search("UNSEEN", charset=None), "search")
        return sorted(int(uid) for line in found.lines[:-1]
                      if re.fullmatch(rb"[\d ]+", bytes(line)) for uid in bytes(line).split())

    async def fetch(self, uid: int) -> bytes | None:
        """Message ``uid`` (its first :data:`MAX_FETCH_BYTES`), without marking it read."""
        response = _ok(await self._client.uid(
            "fetch", str(uid), f"(BODY.PEEK[]<0.{MAX_FETCH_BYTES}>)"), "fetch")
        literal = next((item for item in response.lines if isinstance(item, bytearray)), None)
        return bytes(literal) if literal is not None else None

    async def mark_seen(self, uid: int) -> None:
        _ok(await self._client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)"), "store")

    async def wait_for_mail(self, renew_s: float) -> None:
        """IDLE until the server reports a change, or ``renew_s`` pass."""
        client = self._client
        idle = await client.idle_start(timeout=renew_s)
        lost = asyncio.ensure_future(self.lost.wait())
        push = asyncio.ensure_future(client.wait_server_push(timeout=renew_s + 60))
        try:
            await asyncio.wait({lost, push}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (lost, push):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await waiter
        if self.lost.is_set():
            raise MailboxError("the server closed the connection")
        client.idle_done()
        _ok(await asyncio.wait_for(idle, self.timeout_s), "IDLE")

    def close(self) -> None:
        """Drop the connection (no LOGOUT: this also runs when the task is cancelled)."""
        client, self._client = self._client, None
        if client is None:
            return
        for task in [*client.tasks, *client.protocol.tasks]:
            task.cancel()
        if client.protocol.transport is not None:
            client.protocol.transport.close()


async def send_mail(message: EmailMessage, smtp: SmtpSettings, *, sender: str,
                    recipients: list[str], user: str, password: str,
                    retry: RetryPolicy) -> None:
    """Send ``message`` over SMTP from envelope ``sender``, retrying what may pass later
    (connection errors, timeouts, 4xx); :class:`DeliveryError` when refused (5xx) or when
    the attempts run out."""
    port = smtp.port or SMTP_PORTS[smtp.tls]
    problem = "not attempted"
    for attempt in range(1, retry.attempts + 1):
        try:
            await aiosmtplib.send(
                message, sender=sender, recipients=recipients, hostname=smtp.host, port=port,
                username=user if smtp.login else None,
                password=password if smtp.login else None,
                use_tls=smtp.tls == "ssl", start_tls=smtp.tls == "starttls",
                tls_context=tls_context(smtp.ca_file) if smtp.tls != "none" else None,
                timeout=retry.timeout_s)
            return
        except aiosmtplib.SMTPResponseException as exc:
            problem = f"{exc.code} {exc.message}"
            if not 400 <= exc.code < 500:
                raise DeliveryError(f"the SMTP server refused the mail ({problem})") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the SMTP server refused the recipient ({exc})") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if attempt < retry.attempts:
            wait = retry.delay(attempt)
            log.warning("email: sending failed (attempt %d of %d, %s); retrying in %.2f s",
                        attempt, retry.attempts, problem, wait)
            await asyncio.sleep(wait)
    raise DeliveryError(f"sending the mail failed after {retry.attempts} attempts ({problem})")
