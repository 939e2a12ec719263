"""The bot's own lines in the customer's language, from the bot's ``translations``.

A bot's responses, fallback, offers of a person, handoff messages and form prompts are
written in its own language. ``translations`` (a section of ``bot.yaml``, or a file it
names: ``translations: translations.yaml``) gives them in other languages, one table per
language code, each line of the bot's mapped to its translation::

    translations:
      es:
        "Sorry, I don't know that.": "Lo siento, no lo sé."
        "Would you like to talk to a person?": "¿Quiere hablar con una persona?"
        Talk to a person: Hablar con una persona

A reply the bot wrote is given in the customer's language when every paragraph of it is in
that language's table (matched as written, spacing aside); its buttons' titles are
translated where the table has them (their payloads never). A reply with one paragraph the
table lacks stays as written and ends with the note saying so (``language.py``): never half
one language and half another. A line with template variables is matched as rendered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from foundation.messages import BotReply

NOT_FROM_CATALOG = frozenset({"agent", "faq", "generated"})  # a person's, or the knowledge's


def _key(text: str) -> str:
    return " ".join(text.split())


class Catalog:
    """The bot's ``translations``, each line keyed as replies are matched (spacing aside):
    made once, when the bot loads, not on every turn."""

    def __init__(self, translations: Mapping[str, Mapping[str, str]]) -> None:
        self.lines = {code: {_key(text): translated for text, translated in table.items()}
                      for code, table in translations.items()}

    def translate(self, reply: BotReply, customer: str) -> BotReply | None:
        """``reply`` in the ``customer``'s language; None when the reply is not the bot's
        own writing or any paragraph of it has no translation."""
        lines = self.lines.get(customer)
        if not lines or reply.kind in NOT_FROM_CATALOG or not reply.text.strip():
            return None
        paragraphs = [p for p in reply.text.split("\n\n") if p.strip()]
        if not all(_key(p) in lines for p in paragraphs):
            return None
        buttons = tuple({**b, "title": lines.get(_key(b.get("title", "")), b.get("title", ""))}
                        for b in reply.buttons)
        return dataclasses.replace(reply, text="\n\n".join(lines[_key(p)] for p in paragraphs),
                                   buttons=buttons)
