"""What people answered becomes the dialogue adapter's training data (bot/learning/taught.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from adapters.training.training_data import TaughtAnswer, build_examples, data_digest
from bot.build import build_index
from bot.definition.loader import load_bot
from bot.learning import import_files
from bot.learning.taught import taught_answers
from bot.server.agent_api import last_question
from bot.sessions.factory import open_session_store
from retrieval.embedder import SentenceEmbedder
from tests.conftest import MakeBot

ARRIVAL = ("Cards arrive within 5-7 working days; if yours has not come after 10 days we "
           "send a new one.")
EXTRA = ("Cards arrive within 5-7 working days, and you also get a free travel insurance "
         "voucher and a cinema ticket with every new card.")


def chat(cid: str, question: str, reply: str) -> dict[str, object]:
    return {"id": cid, "messages": [
        {"role": "user", "content": question},
        {"role": "assistant", "name": "bot", "content": "Sorry, I'm not sure about that."},
        {"role": "assistant", "name": "agent:Maria", "content": reply}]}


def options() -> dict[str, object]:
    return {"top_k": 2, "threshold": 0.5, "no_answer_ratio": 0.2, "seed": 3}


def test_taught_answers_add_examples_in_the_persons_words_or_the_entrys(
        make_bot: MakeBot, embedder: SentenceEmbedder) -> None:
    index, _ = build_index(load_bot(make_bot()), embedder, progress=False)
    plain = build_examples(index, embedder, **options())  # type: ignore[arg-type]
    again = build_examples(index, embedder, taught=(), **options())  # type: ignore[arg-type]
    assert data_digest(plain, load_bot(make_bot()).config.persona, max_words=80) == \
        data_digest(again, load_bot(make_bot()).config.persona, max_words=80)
    taught = (TaughtAnswer("parcel with my debit card never came", "card-not-arrived",
                           ARRIVAL, weight=2),
              TaughtAnswer("how fast is a transfer abroad", "transfer-time"),
              TaughtAnswer("what about mortgages", "no-such-entry"))
    examples = build_examples(index, embedder, taught=taught, **options())  # type: ignore[arg-type]
    mine = [e for e in examples if e.question == "parcel with my debit card never came"]
    assert len(mine) == 2 and mine[0].target == f"{ARRIVAL} [card-not-arrived]"
    assert mine[0].gold == "card-not-arrived"
    assert "card-not-arrived" in {p.id for p in mine[0].passages}
    fast = [e for e in examples if e.question == "how fast is a transfer abroad"]
    assert fast[0].target.endswith("[transfer-time]") and fast[0].target.startswith("Domestic")
    assert not [e for e in examples if e.question == "what about mortgages"]


def test_imported_handoff_and_thumbs_up_answers_are_tied_to_entries(
        make_bot: MakeBot, embedder: SentenceEmbedder, tmp_path: Path) -> None:
    root = make_bot()
    past = tmp_path / "past.jsonl"
    past.write_text("\n".join(json.dumps(c) for c in [
        chat("a", "my debit card still hasnt shown up", ARRIVAL),
        chat("b", "parcel with the card never came??", EXTRA),
        chat("c", "do you do car insurance", "No, we don't sell insurance of any kind."),
        chat("d", "My card has not arrived yet", ARRIVAL),  # the FAQ's own question
    ]) + "\n")
    import_files(root, [past])
    bot = load_bot(root)
    store = open_session_store(bot)

    async def events() -> None:
        await store.log_event("rest:u1", "agent_reply", {
            "agent": "maria", "delivered": True, "question": "where has my new card got to",
            "text": ARRIVAL})
        await store.log_event("rest:u2", "feedback", {
            "rating": "up", "citations": [{"passage_id": "transfer-time"}],
            "messages": [{"role": "user", "content": "how long do transfers take"},
                         {"role": "assistant", "content": "Domestic transfers arrive the "
                          "same day. [transfer-time]"}]})
        await store.log_event("rest:u3", "feedback", {
            "rating": "down", "citations": [{"passage_id": "reset-pin"}],
            "messages": [{"role": "user", "content": "pin reset?"},
                         {"role": "assistant", "content": "Open the app."}]})
        await store.close()

    asyncio.run(events())
    index, _ = build_index(bot, embedder, progress=False)
    taught = taught_answers(bot, index, embedder)
    found = {t.question: t for t in taught.answers}
    assert set(found) == {"my debit card still hasnt shown up", "parcel with the card never came??",
                          "where has my new card got to", "how long do transfers take"}
    assert found["my debit card still hasnt shown up"].wording == ARRIVAL
    assert found["parcel with the card never came??"].wording is None  # adds facts: FAQ words
    assert found["where has my new card got to"].weight == 2  # live, checked by a person
    assert found["how long do transfers take"].entry == "transfer-time"
    assert taught.used == {"imported": 2, "handoff": 1, "feedback": 1}
    assert taught.dropped == 1  # the insurance reply states no entry
    assert "4 questions (2 imported, 1 handoff, 1 feedback)" in taught.detail()


def test_the_agent_answers_the_customers_latest_question() -> None:
    history = [{"role": "user", "text": "hi"}, {"role": "bot", "text": "Hello"},
               {"role": "user", "text": "my card is blocked"},
               {"role": "bot", "text": "I'm passing you to a member of our team."}]
    assert last_question(history) == "my card is blocked"
    assert last_question([*history, {"role": "agent", "text": "Unblocked it."}]) is None
