"""What each past conversation asked and how an agent answered it.

An :class:`Exchange` is a conversation's first substantive customer message (greetings,
thanks and requests for a person are not the question) and the first substantive agent
reply after it (holding messages such as "let me check" are not the answer), both without
e-mail salutations and sign-offs. The texts were redacted by the importer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.learning.transcripts import Conversation

SMALL_TALK = frozenset(str.split("""
    hi hello hey hiya heya yo there dear good morning afternoon evening ava acme bank team sir
    madam all thanks thank you ty thx cheers ok okay k great perfect brilliant cool lovely
    awesome nice fine fab super yes no yeah yep nope sure right alright bye goodbye cya many
    much so very a lot that that's thats it it's its is was helps helped helpful the for your
    help again done got understood will do sorted please appreciated grand oh ah ugh hmm
    """))
HANDOFF_WORDS = frozenset(str.split("""
    agent person human someone somebody real live speak talk chat to with a an can i could
    me need want get let put through operator staff member advisor adviser
    """))
HOLDING = re.compile(r"^(let me|i'll (check|look|have a look|find out)|i will (check|look)|"
                     r"one (moment|sec|second|minute)|just a (moment|sec|second|minute)|"
                     r"bear with|hold on|give me|checking)\b", re.IGNORECASE)
HOLDING_WORDS = 15  # a holding message is short
SALUTATION = re.compile(r"^(hi|hello|hey|hiya|dear|good (morning|afternoon|evening)|greetings)"
                        r"\b[^.?!\n]{0,40}[,.!]?$", re.IGNORECASE)
OPENING = re.compile(  # "Hi, Tom here." "Thank you for your email." "Sorry about that!"
    r"^((?i:hi|hello|hey)[,!]?\s+((?i:it's|this is|i'm|i am)\s+)?[A-Z][\w'-]*\b"
    r"|(?i:thank you|thanks|many thanks)\b[^.!?]*\bfor\b"
    r"|(?i:(i'm |i am )?(so |very |really )?sorry|apologies)\b(?! for your loss)"
    r"|[^.!?]{0,60}!)")
OPENING_WORDS = 18  # a longer first sentence carries more than courtesy
FIRST_SENTENCE = re.compile(r"^[^.!?]*[.!?](\s+|$)")
CLOSING = re.compile(r"^(kind |best |warm |many )?(regards|wishes|thanks|thank you|cheers|"
                     r"with sympathy|sincerely|yours( sincerely| faithfully)?|best)\b[^.?\n]*$",
                     re.IGNORECASE)
CONTACT_LINE = re.compile(r"^(\[[A-Z_]+\][\s,;|/-]*)+$")  # "[EMAIL]", "[PHONE] | [EMAIL]"
SIGNATURE_WORDS = 4  # a sign-off line ("Acme Bank Support", "Maria") is short
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Exchange:
    """A conversation's question and the agent's reply to it (None: no agent replied)."""

    conversation: Conversation
    question: str
    reply: str | None
    bot_said: tuple[str, ...] = ()  # the bot's messages after the question, before an agent's


def exchanges(conversations: Iterable[Conversation]) -> list[Exchange]:
    """The exchange of every conversation that asked something."""
    found = []
    for conversation in conversations:
        position = _question_position(conversation)
        if position is None:
            continue
        question = clean_message(conversation.messages[position].text)
        found.append(Exchange(conversation, question, _agent_reply(conversation, position),
                              _bot_said(conversation, position)))
    return found


def first_question(conversation: Conversation) -> str | None:
    """The first substantive customer message, cleaned; None when there is none."""
    position = _question_position(conversation)
    return None if position is None else clean_message(conversation.messages[position].text)


def _question_position(conversation: Conversation) -> int | None:
    for position, message in enumerate(conversation.messages):
        if message.speaker == "customer" and is_question(clean_message(message.text)):
            return position
    return None


def _agent_reply(conversation: Conversation, after: int) -> str | None:
    for message in conversation.messages[after + 1:]:
        if message.speaker == "agent":
            reply = clean_reply(message.text)
            if is_answer(reply):
                return reply
    return None


def _bot_said(conversation: Conversation, after: int) -> tuple[str, ...]:
    said: list[str] = []
    for message in conversation.messages[after + 1:]:
        if message.speaker == "agent":
            break
        if message.speaker == "bot":
            said.append(message.text)
    return tuple(said)


def is_question(text: str) -> bool:
    """Whether a customer message asks something: more than greetings, thanks and a
    request for a person."""
    words = WORD.findall(text.lower())
    return any(w not in SMALL_TALK and w not in HANDOFF_WORDS for w in words)


def is_answer(text: str) -> bool:
    """Whether an agent message answers: not a holding message or small talk."""
    words = WORD.findall(text.lower())
    if HOLDING.match(text) and len(words) < HOLDING_WORDS:
        return False
    return any(w not in SMALL_TALK for w in words)


def clean_message(text: str) -> str:
    """A customer message without its e-mail salutation and sign-off, on one line."""
    return " ".join(" ".join(_paragraphs(text)).split())


def clean_reply(text: str) -> str:
    """An agent message without salutation, self-introduction, courtesy opening and
    sign-off; paragraphs kept."""
    paragraphs = _paragraphs(text)
    if paragraphs:
        first = _without_opening(paragraphs[0])
        paragraphs = [first, *paragraphs[1:]] if first.strip() else paragraphs[1:]
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _without_opening(paragraph: str) -> str:
    """The paragraph without its first sentences that only greet or thank (two at most:
    "Hi, Tom here. Thanks for waiting.")."""
    for _ in range(2):
        sentence = FIRST_SENTENCE.match(paragraph)
        if not (sentence and OPENING.match(paragraph)
                and len(sentence.group().split()) <= OPENING_WORDS):
            break
        paragraph = paragraph[sentence.end():]
    return paragraph


def _paragraphs(text: str) -> list[str]:
    """The message's paragraphs without a leading salutation line or trailing sign-off
    lines (kept when nothing else would remain)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    start, end = 0, len(lines)
    while start < end and (not lines[start] or SALUTATION.match(lines[start])):
        start += 1
    while end > start + 1 and (not lines[end - 1] or _sign_off(lines[end - 1])):
        end -= 1
    if start >= end:
        start, end = 0, len(lines)
    paragraphs: list[str] = []
    current: list[str] = []
    for line in [*lines[start:end], ""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


def _sign_off(line: str) -> bool:
    """A closing ("Kind regards,"), a name, a team name or redacted contact details on its
    own line."""
    if CLOSING.match(line) or CONTACT_LINE.match(line):
        return True
    return len(line.split()) <= SIGNATURE_WORDS and not re.search(r"[.?!:;]$", line) \
        and line[:1].isupper() and "," not in line[:-1]
