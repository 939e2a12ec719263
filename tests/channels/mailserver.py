"""A real mail server for the e-mail channel's tests, started on loopback in a temp folder.

Dovecot (Debian's ``dovecot-imapd`` and ``dovecot-lmtpd``) keeps the mailboxes and serves
IMAP (IDLE included); an ``aiosmtpd`` SMTP server (with AUTH) hands what it is given to
dovecot over LMTP, as a mail server's delivery agent does. Every user's password is
``<user>pw``; addresses are ``<user>@example.test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import imaplib
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

DOMAIN = "example.test"
USERS = ("bot", "alice", "mallory", "carol")
MISSING = ("dovecot is not installed: apt-get install dovecot-imapd dovecot-lmtpd "
           "(scripts/install.sh --dev does)")


def password(user: str) -> str:
    return f"{user}pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, *, imap_port: int, imaps_port: int, lmtp_port: int,
            cert: tuple[Path, Path] | None) -> str:
    """dovecot.conf for one test: everything under ``root``, listening on loopback only.
    As root, mail belongs to ``nobody``; otherwise dovecot runs as the current user."""
    if os.geteuid() == 0:
        uid = gid = pwd.getpwnam("nobody").pw_uid
        users = ""
    else:
        uid, gid = os.getuid(), os.getgid()
        me, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
        users = (f"default_login_user = {me}\ndefault_internal_user = {me}\n"
                 f"default_internal_group = {group}\n"
                 "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n")
    tls = (f"ssl = yes\nssl_cert = <{cert[0]}\nssl_key = <{cert[1]}\n" if cert
           else "ssl = no\n")
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%n
mailbox_idle_check_interval = 1 secs
{users}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
"""


@dataclass
class Sent:
    """One mail the SMTP server took."""

    user: str | None  # who logged in
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class MailServer:
    """The running servers, and a mail client for the tests' customers."""

    root: Path
    imap_port: int
    imaps_port: int
    lmtp_port: int
    smtp_port: int
    smtps_port: int = 0
    sent: list[Sent] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = None
    _controllers: list[Any] = field(default_factory=list)

    # -- delivery ------------------------------------------------------------------------

    def deliver(self, raw: bytes, *, mail_from: str, to: list[str]) -> None:
        """Put a mail into mailboxes over LMTP (as the receiving MTA would)."""
        with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
            lmtp.sendmail(mail_from, to, raw)

    async def send(self, message: EmailMessage, *, user: str = "alice") -> None:
        """A customer sends ``message`` through the SMTP server, logged in as ``user``."""
        def run() -> None:
            with smtplib.SMTP("127.0.0.1", self.smtp_port) as smtp:
                smtp.login(user, password(user))
                smtp.send_message(message)

        await asyncio.to_thread(run)

    # -- mailboxes -----------------------------------------------------------------------

    def _imap(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.imap_port)
        client.login(user, password(user))
        client.select("INBOX")
        return client

    async def inbox(self, user: str) -> list[tuple[int, set[str], EmailMessage]]:
        """``user``'s messages: (uid, flags, message), oldest first."""
        def run() -> list[tuple[int, set[str], EmailMessage]]:
            client = self._imap(user)
            try:
                found: list[tuple[int, set[str], EmailMessage]] = []
                _status, data = client.uid("fetch", "1:*", "(UID FLAGS BODY.PEEK[])")
                for item in data:
                    if not isinstance(item, tuple):
                        continue
                    head = item[0].decode()
                    uid = int(re.search(r"UID (\d+)", head).group(1))  # type: ignore[union-attr]
                    flags = set(re.search(r"FLAGS \(([^)]*)\)", head).group(1).split())  # type: ignore[union-attr]
                    message = message_from_bytes(item[1], policy=policy.default)
                    found.append((uid, flags, message))  # type: ignore[arg-type]
                return sorted(found, key=lambda t: t[0])
            finally:
                client.logout()

        return await asyncio.to_thread(run)

    async def wait_for(self, user: str, count: int, *, timeout: float = 60.0,
                       seen: bool = False) -> list[EmailMessage]:
        """Wait until ``user`` has ``count`` messages (all ``\\Seen``, if asked)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = await self.inbox(user)
            if len(messages) >= count and (not seen or all(
                    "\\Seen" in flags for _uid, flags, _msg in messages)):
                return [message for _uid, _flags, message in messages]
            if time.monotonic() > deadline:
                raise AssertionError(f"{user} has {len(messages)} messages, not {count}: "
                                     f"{[(u, f, m['Subject']) for u, f, m in messages]}")
            await asyncio.sleep(0.2)

    async def unsee(self, user: str, uid: int) -> None:
        """Mark message ``uid`` of ``user`` unread again."""
        def run() -> None:
            client = self._imap(user)
            try:
                client.uid("store", str(uid), "-FLAGS", "(\\Seen)")
            finally:
                client.logout()

        await asyncio.to_thread(run)

    def kick(self, user: str) -> None:
        """Close ``user``'s IMAP connections from the server's side."""
        subprocess.run(["doveadm", "-c", str(self.root / "dovecot.conf"), "kick", user],
                       check=True, capture_output=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, *, cert: tuple[Path, Path] | None = None,
              smtp_tls: Any = None) -> None:
        (self.root / "run").mkdir()
        (self.root / "state").mkdir()
        (self.root / "mail").mkdir()
        (self.root / "users").write_text(
            "".join(f"{u}:{{PLAIN}}{password(u)}::::::\n" for u in USERS))
        config = self.root / "dovecot.conf"
        config.write_text(_config(self.root, imap_port=self.imap_port,
                                  imaps_port=self.imaps_port if cert else 0,
                                  lmtp_port=self.lmtp_port, cert=cert))
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        with open(self.root / "stdout", "wb") as out:  # dovecot keeps its own copy
            self._process = subprocess.Popen(["dovecot", "-F", "-c", str(config)],
                                             stdout=out, stderr=subprocess.STDOUT)
        self._wait_listening(self.imap_port)
        self._start_smtp(smtp_tls)

    def _wait_listening(self, port: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.05)
        logs = [self.root / "stdout", self.root / "dovecot.log"]
        raise RuntimeError("dovecot did not start:\n" + "\n".join(
            path.read_text(errors="replace") for path in logs if path.exists()))

    def _start_smtp(self, tls: Any) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        server = self

        def authenticate(_server: Any, session: Any, _envelope: Any, _mechanism: str,
                         data: Any) -> AuthResult:
            user = data.login.decode()
            ok = user in USERS and data.password.decode() == password(user)
            return AuthResult(success=ok, auth_data=user if ok else None)

        class Handler:
            async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
                raw = envelope.original_content or envelope.content
                server.sent.append(Sent(session.auth_data, envelope.mail_from,
                                        list(envelope.rcpt_tos),
                                        message_from_bytes(raw, policy=policy.default)))  # type: ignore[arg-type]
                try:
                    await asyncio.to_thread(server.deliver, raw, mail_from=envelope.mail_from,
                                            to=envelope.rcpt_tos)
                except smtplib.SMTPException as exc:
                    return f"550 not delivered: {exc}"
                return "250 OK delivered"

        options: dict[str, Any] = {"authenticator": authenticate, "auth_required": True,
                                   "auth_require_tls": tls is not None}
        if tls is not None:
            options |= {"tls_context": tls, "require_starttls": True}
        plain = Controller(Handler(), hostname="127.0.0.1", port=self.smtp_port, **options)
        plain.start()
        self._controllers.append(plain)
        if tls is not None:  # implicit TLS ("ssl") beside STARTTLS
            self.smtps_port = free_port()
            options = {k: v for k, v in options.items()  # (aiosmtpd does not count
                       if k not in ("tls_context", "require_starttls")}  # implicit TLS)
            options["auth_require_tls"] = False
            secure = Controller(Handler(), hostname="127.0.0.1", port=self.smtps_port,
                                ssl_context=tls, **options)
            secure.start()
            self._controllers.append(secure)

    def stop(self) -> None:
        for controller in self._controllers:
            controller.stop()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def new_server() -> MailServer:
    """A server in a fresh folder of /tmp (short paths: dovecot's sockets live there),
    readable by the mail user."""
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    root.chmod(0o755)
    return MailServer(root, imap_port=free_port(), imaps_port=free_port(),
                      lmtp_port=free_port(), smtp_port=free_port())


def make_certificates(root: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate it signed for ``localhost``/``127.0.0.1``: the CA file,
    the certificate and its key (PEM files under ``root``)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test mail CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=True, content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
              encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = root / "ca.pem", root / "cert.pem", root / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths
