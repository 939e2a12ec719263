"""Who may act on a conversation: the per-conversation routes (outbox, feedback) ask here.

A browser proves its conversation with its session token (:mod:`channels.visitors`); a
server with one of ``security.api_tokens`` may name any conversation; without either, only
a REST conversation, and only while the rest channel has ``auth: none`` (local
development). Everything else is 401, and a token holder naming another conversation 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.errors import BadRequest, Forbidden
from bot.sessions.keys import SenderIds
from channels.http import API_TOKENS, MAX_SENDER_CHARS, matching_token, unauthorized
from channels.rest import rest_is_open
from channels.visitors import presented_token, tokens_of

SENDER_IDS: web.AppKey[SenderIds] = web.AppKey("sender_ids", SenderIds)


def conversation_of(request: web.Request, *, sender: object, channel: object,
                    channels: Mapping[str, Any]) -> tuple[str, str]:
    """``(channel, sender)`` of the conversation ``request`` may act on, the sender as
    sessions store it (:mod:`bot.sessions.keys`).

    ``sender``/``channel``: what the request names (None: not named); ``channels``: the
    bot's configured channels (whether REST is open).
    """
    channel_name, sender_id = _conversation(request, sender=sender, channel=channel,
                                            channels=channels)
    ids = request.config_dict.get(SENDER_IDS)
    return channel_name, ids.stored(channel_name, sender_id) if ids else sender_id


def _conversation(request: web.Request, *, sender: object, channel: object,
                  channels: Mapping[str, Any]) -> tuple[str, str]:
    named_channel, named_sender = _named(channel, "channel"), _named(sender, "sender")
    token = presented_token(request)
    api_tokens: tuple[str, ...] = request.config_dict.get(API_TOKENS) or ()
    if matching_token(token, api_tokens) is not None:
        return _required(named_channel or "rest", named_sender)
    if token is not None:
        visitor = tokens_of(request).verify(token, None)
        if named_sender not in (None, visitor.sender) or \
                named_channel not in (None, visitor.channel):
            raise Forbidden("this session token belongs to another conversation")
        return visitor.channel, visitor.sender
    if (named_channel or "rest") == "rest" and rest_is_open(dict(channels)):
        return _required("rest", named_sender)
    raise unauthorized("a credential is required: the conversation's session token, or an "
                       "API token (security.api_tokens)")


def _named(value: object, name: str) -> str | None:
    """What the request names for ``name`` (None when it names nothing)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_SENDER_CHARS:
        raise BadRequest(f"'{name}' must be a string of at most {MAX_SENDER_CHARS} characters")
    return value.strip() or None


def _required(channel: str, sender: str | None) -> tuple[str, str]:
    if not sender:
        raise BadRequest("'sender' is required")
    return channel, sender
