"""Fetching for the crawler, with every rule applied to every request, redirects included.

- http(s) only; redirects are followed by hand (at most :data:`MAX_REDIRECTS`), each hop
  checked by the caller's ``scope`` (the site's host and path prefix, robots.txt) and a
  loop named as one;
- the address every request goes to is checked: a host name through
  :class:`GuardedResolver` (the connector connects only to the addresses it returns, so
  a name cannot resolve to one address when checked and another when used), an address
  written in the URL before the request (aiohttp does not ask the resolver about those);
  private, loopback, link-local and other non-public addresses are refused unless the
  site allows them (``allow_private``, ``allow_networks``);
- a polite rate: a request starts at most every ``delay_s`` seconds (:class:`Pacer`);
- limits: the request's time (``timeout_s``, and what is left of ``max_seconds``), the
  body's size (read in blocks, counted after decompression, so a small gzip that inflates
  to gigabytes stops at the limit), its content type (checked before the body is read);
- no proxy from the environment, no cookies kept.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from retrieval.sites.settings import SiteSource

MAX_REDIRECTS = 5
CONNECTIONS = 4  # requests in flight at once, paced by the site's delay
REDIRECTS = frozenset({301, 302, 303, 307, 308})
Scope = Callable[[str], Awaitable[str | None]]  # why a URL may not be read, or None


class FetchFailed(Exception):
    """A URL could not be read: ``reason`` says why; ``transient`` when trying again later
    may work (a time-out, a lost connection, HTTP 5xx or 429); ``status``: the HTTP status
    of an error answer."""

    def __init__(self, reason: str, *, transient: bool = False,
                 status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status = status


class TimeLimit(Exception):
    """The crawl's ``max_seconds`` ran out before this request."""


class AddressRefused(Exception):
    """A host resolved to an address the site may not reach (not an ``OSError``, so that
    aiohttp passes it on rather than retrying another address)."""


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a crawl may connect to: public ones, and private ones when allowed."""

    allow_private: bool = False
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def of(cls, site: SiteSource) -> AddressPolicy:
        return cls(site.allow_private,
                   tuple(ipaddress.ip_network(n, strict=False) for n in site.allow_networks))

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be reached ("127.0.0.1 is a loopback address"), or None."""
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return f"{address} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.allow_private or any(ip in network for network in self.networks):
            return None
        for kind, flag in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                           ("unspecified", ip.is_unspecified), ("multicast", ip.is_multicast),
                           ("private", ip.is_private), ("reserved", ip.is_reserved),
                           ("non-public", not ip.is_global)):
            if flag:
                return f"{address} is a {kind} address"
        return None


class GuardedResolver(AbstractResolver):
    """The system resolver, refusing a host any of whose addresses the policy refuses."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            refused = self.policy.refusal(result["host"])
            if refused:
                raise AddressRefused(f"{host} resolves to {refused}")
        return results

    async def close(self) -> None:
        await self._inner.close()


class Pacer:
    """Starts requests at most every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self.interval


@dataclass(frozen=True)
class Fetched:
    """A response read to its end (``status`` 200), or a 304 to a conditional request."""

    url: str  # after redirects
    status: int
    body: bytes
    content_type: str  # "text/html"
    charset: str | None
    etag: str | None
    last_modified: str | None


def normal_url(url: str, base: str = "") -> str | None:
    """``url`` (relative to ``base``) without its fragment, scheme and host in lower case,
    no default port, "/" for an empty path; None when it is not http(s) or has no host."""
    try:
        parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


class Fetcher:
    """One crawl's HTTP client (use as ``async with``)."""

    def __init__(self, site: SiteSource, *, deadline: float) -> None:
        self.site = site
        self.policy = AddressPolicy.of(site)
        self.deadline = deadline  # the event loop's time when the crawl must stop
        self.pacer = Pacer(site.delay_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.policy),
                                         limit=CONNECTIONS)
        self._session = aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": self.site.user_agent, "Accept-Encoding": "gzip, deflate"})
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    def slower(self, interval: float) -> None:
        """Pace requests at least ``interval`` seconds apart (robots.txt's Crawl-delay)."""
        self.pacer.interval = max(self.pacer.interval, interval)

    async def get(self, url: str, *, kinds: Collection[str] | None, max_bytes: int,
                  validators: tuple[str | None, str | None] = (None, None),
                  scope: Scope | None = None) -> Fetched:
        """GET ``url``, following redirects that ``scope`` allows; ``kinds``: the content
        types accepted; ``validators``: the ETag and Last-Modified of the copy kept, sent
        as a conditional request (a 304 answer has no body); ``kinds`` None: any."""
        headers = {}
        if validators[0]:
            headers["If-None-Match"] = validators[0]
        if validators[1]:
            headers["If-Modified-Since"] = validators[1]
        trail = [url]
        for _hop in range(MAX_REDIRECTS + 1):
            current = trail[-1]
            response = await self._request(current, headers, kinds, max_bytes)
            if isinstance(response, Fetched):
                return response
            target = normal_url(response, current)
            if target is None:
                raise FetchFailed(f"redirects to {response!r}, which is not an http(s) URL")
            if target in trail:
                raise FetchFailed("redirect loop: " + " -> ".join([*trail, target]))
            refused = self._address_refusal(target)
            if refused is None and scope is not None:
                refused = await scope(target)
            if refused:
                raise FetchFailed(f"redirects to {target}, {refused}")
            trail.append(target)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects: " + " -> ".join(trail))

    async def _request(self, url: str, headers: dict[str, str], kinds: Collection[str] | None,
                       max_bytes: int) -> Fetched | str:
        """One request: the response, or the Location it redirects to."""
        assert self._session is not None, "use the Fetcher as `async with`"
        refused = self._address_refusal(url)
        if refused:
            raise FetchFailed(refused)
        await self.pacer.wait()
        left = self.deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise TimeLimit
        timeout = min(self.site.timeout_s, left)
        try:
            async with self._session.get(
                    url, headers=headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                return await self._read(url, response, kinds, max_bytes, bool(headers))
        except AddressRefused as exc:
            raise FetchFailed(_refused(str(exc))) from exc
        except TimeoutError as exc:
            raise FetchFailed(f"timed out after {timeout:g} s", transient=True) from exc
        except aiohttp.ClientError as exc:
            raise FetchFailed(f"could not be read ({type(exc).__name__}: {exc})",
                              transient=True) from exc

    def _address_refusal(self, url: str) -> str | None:
        """Why the address written in ``url`` may not be reached; None for a host name
        (the resolver checks its addresses) or an address the policy allows."""
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
        refused = self.policy.refusal(host)
        return _refused(refused) if refused else None

    async def _read(self, url: str, response: aiohttp.ClientResponse,
                    kinds: Collection[str] | None,
                    max_bytes: int, conditional: bool) -> Fetched | str:
        status = response.status
        if status in REDIRECTS:
            location = response.headers.get("Location")
            if not location:
                raise FetchFailed(f"HTTP {status} without a Location to redirect to")
            return location
        etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
        if status == 304 and conditional:
            return Fetched(url, 304, b"", "", None, etag, modified)
        if status != 200:
            why = {404: "not found", 410: "gone", 401: "needs a login", 403: "forbidden"}
            raise FetchFailed(f"HTTP {status} ({why.get(status, response.reason or 'error')})",
                              transient=status >= 500 or status == 429, status=status)
        kind = response.content_type.lower()
        if kinds is not None and kind not in kinds:
            wanted = " or ".join(name for example, name in (
                ("text/html", "an HTML page"), ("application/xml", "a sitemap"))
                if example in kinds) or " or ".join(sorted(kinds))
            raise FetchFailed(f"is {kind or 'of no content type'}, not {wanted}")
        size = response.content_length
        if size is not None and size > max_bytes and not response.headers.get(
                "Content-Encoding"):
            raise FetchFailed(f"is {size:,} bytes, more than max_page_bytes ({max_bytes:,})")
        body = bytearray()
        async for block in response.content.iter_chunked(1 << 16):
            body.extend(block)
            if len(body) > max_bytes:
                raise FetchFailed(f"is more than max_page_bytes ({max_bytes:,} bytes)")
        return Fetched(url, 200, bytes(body), kind, response.charset, etag, modified)


def _refused(why: str) -> str:
    return (f"refused: {why} (set allow_private: true, or list its network in "
            "allow_networks, to read it)")
