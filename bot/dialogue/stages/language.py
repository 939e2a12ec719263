"""The customer's language (``bot/dialogue/language.py``): identified from the message when
the bot's ``language:`` asks for it, kept in the session; answers nothing. Later stages and
the router read ``turn.language``."""

from __future__ import annotations

from bot.dialogue.turn import Parts, Turn


async def language(turn: Turn, parts: Parts) -> None:
    if parts.language is not None:
        turn.language = parts.language.of_turn(turn.session, turn.text)
    return None
