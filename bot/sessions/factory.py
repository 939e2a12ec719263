"""Open the session store a bot's YAML selects: SQLite (embedded default) or Redis."""

from __future__ import annotations

from bot.definition.config import BotConfig, BotDefinition
from bot.definition.secrets import bot_secrets
from bot.sessions.keys import server_secret
from bot.sessions.redaction import RedactingStore
from bot.sessions.store import SessionStore, SQLiteSessionStore


def redis_prefix(config: BotConfig) -> str:
    """The namespace of the bot's keys in Redis."""
    return config.sessions.redis_prefix or f"supportbot:{config.name}"


def open_session_store(bot: BotDefinition) -> SessionStore:
    """The configured store, opened (blocking): masking the bot's secrets and token shapes
    users type, and personal data when the bot asks for it (``security.redact_pii``)."""
    settings = bot.config.sessions
    ttl = settings.ttl_minutes * 60
    store: SessionStore
    if settings.store == "redis":
        from bot.sessions.redis_store import RedisSessionStore

        store = RedisSessionStore(settings.redis_url, prefix=redis_prefix(bot.config),
                                  ttl_seconds=ttl, lease_seconds=settings.lock_lease_s).open()
    else:
        store = SQLiteSessionStore(bot.path(settings.path), ttl_seconds=ttl).open()
    return RedactingStore(store, secret=server_secret(bot), secrets=bot_secrets(bot.config),
                          pii=bot.config.security.redact_pii)
