"""A minimal Chrome DevTools Protocol driver for headless Chromium, over aiohttp websockets.

Nothing is downloaded: it starts the system ``/usr/bin/chromium`` (Debian's ``chromium``
package) with a throwaway profile and talks CDP to one page.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")
KEYS = {"Enter": ("\r", 13), "Escape": ("", 27), "Tab": ("", 9)}


class CdpError(RuntimeError):
    """A CDP command failed, or the page threw."""


class Page:
    """One browser tab: send commands, evaluate JavaScript, type and press keys."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []  # uncaught exceptions and console errors
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or
                                   details.get("text", "exception"))
            elif data.get("method") == "Runtime.consoleAPICalled" and \
                    data["params"]["type"] == "error":
                self.errors.append(" ".join(str(a.get("value", a.get("description")))
                                            for a in data["params"]["args"]))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[command_id] = future
        await self.ws.send_json({"id": command_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 60)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        async with asyncio.timeout(timeout):
            while not (value := await self.evaluate(expression)):
                await asyncio.sleep(0.1)
        return value

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for(f"location.href === {json.dumps(url)} && "
                            "document.readyState === 'complete'")

    async def reload(self) -> None:
        await self.evaluate("window.__before_reload = true")
        await self.send("Page.reload", ignoreCache=True)
        await self.wait_for("!window.__before_reload && document.readyState === 'complete'")

    async def type(self, text: str) -> None:
        """Type into the focused element."""
        await self.send("Input.insertText", text=text)

    async def press(self, key: str) -> None:
        """Press and release ``key`` (Enter, Escape or Tab) on the focused element."""
        text, code = KEYS[key]
        common = {"key": key, "code": key, "windowsVirtualKeyCode": code,
                  "nativeVirtualKeyCode": code}
        await self.send("Input.dispatchKeyEvent", type="keyDown", text=text, **common)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **common)


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    """Start headless Chromium with a fresh ``profile`` folder; yield its first page."""
    profile.mkdir(parents=True, exist_ok=True)
    log = (profile.parent / "chromium.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=log)
    try:
        port_file = profile / "DevToolsActivePort"
        async with asyncio.timeout(60):
            while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
                if process.returncode is not None:
                    raise CdpError(f"chromium exited with {process.returncode}; see {log.name}")
                await asyncio.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(30):
                while True:
                    targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                    pages = [t for t in targets if t.get("type") == "page"]
                    if pages:
                        break
                    await asyncio.sleep(0.1)
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                try:
                    yield page
                finally:
                    page.reader.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
