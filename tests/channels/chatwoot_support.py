"""Chatwoot for the connector's tests: its documented webhook payload and a loopback stand-in
of the two API routes an agent bot calls."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .support import serve_locally, wait_until_counted

# The ``message_created`` payload of Chatwoot's documentation, field for field: "Webhook
# Events" (chatwoot/docs, docs/product/others/webhook-events.md, section message_created),
# as https://www.chatwoot.com/docs/product/others/webhook-events shows it. An agent bot
# receives the same Message#webhook_data merged with "event" (app/listeners/
# agent_bot_listener.rb). Tests copy it with :func:`message_event`.
MESSAGE_CREATED: dict[str, Any] = {
    "id": 118,
    "content": "hi",
    "created_at": "2021-07-23T18:02:48.000Z",
    "message_type": "incoming",
    "content_type": "text",
    "private": False,
    "content_attributes": {},
    "source_id": None,
    "sender": {"id": 14, "name": "little-haze-776", "avatar": "", "type": "contact"},
    "inbox": {"id": 1, "name": "Acme Support"},
    "conversation": {
        "additional_attributes": {
            "browser": {
                "device_name": "Unknown",
                "browser_name": "Chrome",
                "platform_name": "macOS",
                "browser_version": "92.0.4515.107",
                "platform_version": "10.15.7",
            },
            "referer": "http://localhost:3000/widget_tests",
            "initiated_at": {
                "timestamp": "Fri Jul 23 2021 23:32:48 GMT+0530 (India Standard Time)"},
        },
        "can_reply": True,
        "channel": "Channel::WebWidget",
        "id": 10,
        "inbox_id": 1,
        "contact_inbox": {
            "id": 12,
            "contact_id": 14,
            "inbox_id": 1,
            "source_id": "405f1d30-1af3-4fa0-8ffd-11ea3f86101e",
            "created_at": "2021-07-23T18:01:48.739Z",
            "updated_at": "2021-07-23T18:01:48.739Z",
            "hmac_verified": False,
        },
        "messages": [{
            "id": 120,
            "content": "Get notified by email",
            "account_id": 1,
            "inbox_id": 1,
            "conversation_id": 10,
            "message_type": 3,
            "created_at": 1627063369,
            "updated_at": "2021-07-23T18:02:49.000Z",
            "private": False,
            "status": "sent",
            "source_id": None,
            "content_type": "input_email",
            "content_attributes": {},
            "sender_type": None,
            "sender_id": None,
            "external_source_ids": {},
        }],
        "meta": {
            "sender": {
                "additional_attributes": {},
                "custom_attributes": {},
                "email": None,
                "id": 14,
                "identifier": None,
                "name": "little-haze-776",
                "phone_number": None,
                "pubsub_token": "baRUMaAnAB6geeGXUXBsJwDS",
                "thumbnail": "",
                "type": "contact",
            },
            "assignee": {
                "id": 1,
                "name": "John",
                "available_name": "John",
                "avatar_url": "https://www.gravatar.com/avatar/0d722ac7bc3b3c92c030d0da9690d981"
                              "?d=404",
                "type": "user",
                "availability_status": "online",
            },
        },
        "status": "open",
        "unread_count": 1,
        "agent_last_seen_at": 0,
        "contact_last_seen_at": 0,
        "timestamp": 1627063369,
    },
    "account": {"id": 1, "name": "Acme Inc"},
    "event": "message_created",
}


def message_event(message_id: int, content: str | None = "hi", *, status: str = "pending",
                  conversation: int | str = 10, **fields: Any) -> dict[str, Any]:
    """The documented payload with another id, text and conversation status (``pending``:
    the agent bot holds the conversation), and ``fields`` replaced at the top level."""
    event = copy.deepcopy(MESSAGE_CREATED)
    event.update(id=message_id, content=content, **fields)
    event["conversation"].update(id=conversation, status=status)
    return event


def signed(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Chatwoot 4.13+ signs a delivery with (lib/webhooks/trigger.rb: an HMAC
    of ``"<timestamp>.<body>"``)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Chatwoot-Timestamp": stamp, "X-Chatwoot-Signature": f"sha256={digest}",
            "X-Chatwoot-Delivery": "7f1c7a5e-1c1e-4f0e-9b4d-2d9a3c1b0e11"}


@dataclass
class Call:
    """One API request the stand-in accepted."""

    action: str  # "messages" or "toggle_status"
    account: int
    conversation: int
    body: dict[str, Any]


CONTENT_TYPES = ("text", "input_email", "cards", "input_select", "form", "article")
STATUSES = ("open", "resolved", "pending", "snoozed")


class ChatwootApi:
    """The two application API routes an agent bot uses, as Chatwoot's API reference
    (swagger/paths/application/conversation/messages/create.yml, toggle_status.yml)
    describes them: ``api_access_token`` header (401 without the bot's token), the body's
    fields checked (422 otherwise; 404 for an unknown conversation), the documented answers.
    ``fail`` answers the next requests with these statuses instead."""

    def __init__(self, token: str, conversations: tuple[int, ...] = (10, 11)) -> None:
        self.token = token
        self.conversations = set(conversations)
        self.status = dict.fromkeys(conversations, "pending")
        self.calls: list[Call] = []
        self.fail: list[int] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()

    async def _check(self, request: web.Request) -> tuple[int, int, dict[str, Any]]:
        if request.headers.get("api_access_token") != self.token:
            raise Refused(401, "Invalid Access Token")
        if self.fail:
            raise Refused(self.fail.pop(0), "scripted failure")
        account, conversation = (int(request.match_info[k]) for k in ("account", "conversation"))
        if conversation not in self.conversations:
            raise Refused(404, "Resource could not be found")
        body = await request.json()
        if not isinstance(body, dict):
            raise Refused(422, "body must be an object")
        return account, conversation, body

    async def create_message(self, request: web.Request) -> web.Response:
        account, conversation, body = await self._check(request)
        content = body.get("content")
        if not isinstance(content, str) or body.get("message_type", "outgoing") not in \
                ("outgoing", "incoming") or not isinstance(body.get("private", False), bool) \
                or body.get("content_type", "text") not in CONTENT_TYPES:
            raise Refused(422, "invalid message")
        self._record(Call("messages", account, conversation, body))
        return web.json_response({
            "id": 1000 + len(self.calls), "content": content, "account_id": account,
            "conversation_id": conversation, "message_type": 1, "private": False,
            "content_type": body.get("content_type", "text"),
            "content_attributes": body.get("content_attributes", {}),
            "created_at": int(time.time()), "sender": {"id": 3, "type": "agent_bot"}})

    async def toggle_status(self, request: web.Request) -> web.Response:
        account, conversation, body = await self._check(request)
        if body.get("status") not in STATUSES:
            raise Refused(422, "invalid status")
        self._record(Call("toggle_status", account, conversation, body))
        self.status[conversation] = body["status"]
        return web.json_response({"meta": {}, "payload": {
            "success": True, "current_status": body["status"],
            "conversation_id": conversation}})

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._arrived.set()

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Call]:
        """Wait until ``count`` calls were accepted; all of them."""
        await wait_until_counted(self.calls, count, self._arrived, timeout)
        return self.calls

    async def start(self) -> None:
        app = web.Application(middlewares=[refusals])
        base = "/api/v1/accounts/{account:\\d+}/conversations/{conversation:\\d+}"
        app.router.add_post(f"{base}/messages", self.create_message)
        app.router.add_post(f"{base}/toggle_status", self.toggle_status)
        self._runner, self.url = await serve_locally(app)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def messages(self) -> list[Call]:
        return [call for call in self.calls if call.action == "messages"]


class Refused(Exception):
    """An API error: Chatwoot's ``{"error": ...}`` body with ``status``."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status


@web.middleware
async def refusals(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except Refused as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
