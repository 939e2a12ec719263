"""Who is signed in to the desk: agents' credentials and their sign-in sessions.

An agent signs in with a name of ``handoff.agents`` and its credential (compared as SHA-256
digests in constant time, every agent checked, so neither timing nor length tells which part
was wrong). A sign-in is a session of the session store keyed ``desk:<digest of the cookie>``
(the cookie itself is never stored), so it holds across workers that share the store and
ends on sign-out, after :data:`SIGN_IN_HOURS`, or when idle past ``sessions.ttl_minutes``.
Each sign-in has its own CSRF token, which every state-changing request must carry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.sessions.events import DESK_SIGN_IN_EVENT, DESK_SIGN_OUT_EVENT
from bot.sessions.store import Session, SessionStore

DESK_CHANNEL = "desk"
SIGN_IN_HOURS = 12.0
TOUCH_AFTER_S = 60.0  # a request refreshes the sign-in's idle time at most this often
FAILURES_ALLOWED = 5  # failed sign-ins per client and name ...
FAILURE_WINDOW_S = 300.0  # ... within this window, then 429 until it passes
FAILURES_KEPT = 10_000


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass(frozen=True)
class SignedIn:
    """An agent's sign-in: who, the CSRF token of its requests, its store key."""

    agent: str
    csrf: str
    key: str

    def csrf_matches(self, given: str | None) -> bool:
        """Whether ``given`` is this sign-in's CSRF token (constant time)."""
        return given is not None and hmac.compare_digest(_digest(given), _digest(self.csrf))


class Failures:
    """Failed sign-ins per ``(client, name)`` in this process (oldest forgotten first)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def wait_s(self, who: tuple[str, str]) -> float:
        """Seconds until ``who`` may try again (0: now)."""
        recent = [t for t in self._seen.get(who, []) if time.time() - t < FAILURE_WINDOW_S]
        if len(recent) < FAILURES_ALLOWED:
            return 0.0
        return FAILURE_WINDOW_S - (time.time() - recent[0])

    def add(self, who: tuple[str, str]) -> None:
        now = time.time()
        recent = [t for t in self._seen.pop(who, []) if now - t < FAILURE_WINDOW_S]
        self._seen[who] = [*recent, now][-FAILURES_ALLOWED:]
        while len(self._seen) > FAILURES_KEPT:
            self._seen.popitem(last=False)

    def clear(self, who: tuple[str, str]) -> None:
        self._seen.pop(who, None)


class SignIns:
    """Checks credentials and keeps sign-ins in the session store (read at request time)."""

    def __init__(self, agents: Mapping[str, str], store: Callable[[], SessionStore]) -> None:
        self._agents = {name: _digest(credential) for name, credential in agents.items()
                        if credential}  # an unset ${ENV:-}: that agent cannot sign in
        self.store = store
        self.failures = Failures()

    @property
    def configured(self) -> bool:
        return bool(self._agents)

    def agent(self, name: str, credential: str) -> str | None:
        """The agent ``name`` when ``credential`` is theirs, else None."""
        given_name, given = _digest(name), _digest(credential)
        found = None
        for agent, known in self._agents.items():
            same = hmac.compare_digest(given_name, _digest(agent)) & \
                hmac.compare_digest(given, known)
            if same:
                found = agent
        return found

    @staticmethod
    def _key(cookie: str) -> tuple[str, str]:
        sender = hashlib.sha256(cookie.encode("utf-8")).hexdigest()[:40]
        return f"{DESK_CHANNEL}:{sender}", sender

    async def open(self, agent: str) -> tuple[str, SignedIn]:
        """A new sign-in of ``agent``: the cookie value and the sign-in."""
        cookie = secrets.token_urlsafe(32)
        key, sender = self._key(cookie)
        now = time.time()
        session = Session(key=key, channel=DESK_CHANNEL, sender=sender, started_at=now,
                          updated_at=now)
        signed = SignedIn(agent, secrets.token_urlsafe(32), key)
        session.state["desk"] = {"agent": agent, "csrf": signed.csrf,
                                 "expires": now + SIGN_IN_HOURS * 3600}
        store = self.store()
        await store.save(session)
        await store.log_event(key, DESK_SIGN_IN_EVENT, {"agent": agent})
        return cookie, signed

    async def find(self, cookie: str | None) -> SignedIn | None:
        """The live sign-in of ``cookie`` (None: none, signed out or expired)."""
        if not cookie or len(cookie) > 100:
            return None
        key, sender = self._key(cookie)
        store = self.store()
        session = await store.get(key, channel=DESK_CHANNEL, sender=sender)
        state = session.state.get("desk")
        if not isinstance(state, dict) or state.get("closed") or \
                float(state.get("expires", 0)) < time.time() or state.get("agent") not in \
                self._agents:  # an agent removed from the YAML is signed out
            return None
        if time.time() - session.updated_at > TOUCH_AFTER_S:
            await store.save(session)  # keeps it alive while the agent works
        return SignedIn(str(state["agent"]), str(state["csrf"]), key)

    async def close(self, signed: SignedIn) -> None:
        """Sign out: the cookie's sign-in ends in every worker."""
        store = self.store()
        channel, _, sender = signed.key.partition(":")
        async with store.lock(signed.key):
            session = await store.get(signed.key, channel=channel, sender=sender)
            session.state.setdefault("desk", {})["closed"] = True
            await store.save(session)
        await store.log_event(signed.key, DESK_SIGN_OUT_EVENT, {"agent": signed.agent})
