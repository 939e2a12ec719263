"""`bot suggest DIR [--min-count N] [--accept ID|all] [--unaccept ID] [--reject ID]`: FAQ
entries, alternatives and intents mined from the imported conversations, as reviewable files
under DIR/suggestions/; accept them into the bot, take them back out, or turn them down."""

from __future__ import annotations

import argparse
import sys

from bot.build import bot_embedder
from bot.commands import bot_folder, bot_folder_argument, loaded_bot
from bot.definition.config import BotDefinition, typed_path
from bot.errors import BotError, ConfigError, RetrievalError, library_errors
from bot.evaluation.conversations import load_conversations as load_tests
from bot.learning import suggestions as store
from bot.learning.accepting import accept, describe
from bot.learning.exchanges import exchanges
from bot.learning.marks import MARKS, all_marks, alternatives_from_marks, knowledge_gaps
from bot.learning.mining import Mined, MiningSettings, mine
from bot.learning.taking_back import reject, unaccept
from bot.learning.transcripts import conversations_dir, load_conversations
from retrieval import knowledge
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex, index_artifact


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "suggest", help="suggest FAQ entries, alternatives and intents from past conversations",
        description="Cluster the customers' questions in the conversations `bot import` "
        "stored, link them to the agents' replies, and write suggestions to review under "
        "DIR/suggestions/ (nothing is merged until you accept it).")
    bot_folder_argument(parser)
    parser.add_argument("--min-count", type=_positive, default=MiningSettings.min_count,
                        metavar="N", help="conversations a new FAQ entry needs (default: "
                        f"{MiningSettings.min_count})")
    parser.add_argument("--accept", metavar="ID|all",
                        help="merge one suggestion (its file as you left it), or all pending")
    parser.add_argument("--unaccept", metavar="ID",
                        help="take an accepted suggestion back out of the bot (it is pending "
                        "again)")
    parser.add_argument("--reject", metavar="ID",
                        help="turn a pending suggestion down: its file goes, and `bot suggest` "
                        "does not suggest it again")
    parser.add_argument("--force", action="store_true",
                        help="with --accept: merge text that still holds masked personal data "
                        "([PHONE], ...) or a person's name, with a warning for each")
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def run(args: argparse.Namespace) -> int:
    root = bot_folder(args)
    if args.force and not args.accept:
        raise ConfigError("--force goes with --accept ID|all")
    if sum(bool(a) for a in (args.accept, args.unaccept, args.reject)) > 1:
        raise ConfigError("one of --accept, --unaccept and --reject at a time")
    if args.unaccept:
        changed = unaccept(root, args.unaccept)
        print(f"took {args.unaccept} back out of {changed}; it is pending again "
              f"(suggestions/{args.unaccept}.yaml). Run `bot train {typed_path(root)}` to "
              "serve the bot without it")
        return 0
    if args.reject:
        removed = reject(root, args.reject)
        print(f"rejected {args.reject}: removed {removed}; `bot suggest` will not suggest it "
              "again (suggestions/rejected.json lists it)")
        return 0
    if args.accept:
        accepted = accept(root, args.accept, force=args.force)
        for line in describe(accepted):
            print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
        print(f"run `bot train {typed_path(loaded_bot(args).root)}` to use "
              f"{'it' if len(accepted) == 1 else 'them'}")
        return 0
    bot = loaded_bot(args)
    mined, index = mine_bot(bot, MiningSettings(min_count=args.min_count))
    wordings = {p.id: {w.lower() for w in (p.question, *p.alternatives) if w}
                for p in index.passages}
    marks = all_marks(bot, bot.root / MARKS)
    found = alternatives_from_marks(marks, store.from_mined(mined), wordings)
    written = store.write(bot.root, found, mined.unanswered, mined.withheld,
                          knowledge_gaps(marks))
    print(summary(written, mined, typed_path(store.folder(bot.root))))
    return 0


def mine_bot(bot: BotDefinition, settings: MiningSettings) -> tuple[Mined, FaqIndex]:
    """Mine the bot's imported conversations against its FAQ as it is now; the FAQ's
    index."""
    if bot.config.faq is None:
        raise ConfigError("this bot has no FAQ ('faq' section): suggestions extend one; add "
                          "faq.sources first", file=typed_path(bot.file))
    conversations = load_conversations(bot.root)
    if not conversations:
        raise ConfigError(f"no imported conversations; run `bot import {typed_path(bot.root)} "
                          "FILE` first", file=typed_path(conversations_dir(bot.root)))
    config = bot.config
    embedder = bot_embedder(bot)
    with library_errors(file=typed_path(bot.file)):
        index = faq_index(bot, embedder)
        return mine(exchanges(conversations), index, embedder,
                    threshold=bot.config.faq.answer_threshold, settings=settings,
                    taken_intents=[i.name for i in config.intents],
                    cited=cited_questions(bot)), index


def cited_questions(bot: BotDefinition) -> list[tuple[str, str]]:
    """The conversation tests' questions and the entries they expect to be cited (none when
    the bot has no tests, or its tests do not load: ``bot test`` reports those)."""
    folder = bot.path(bot.config.versions.gate.tests)
    if not folder.is_dir():
        return []
    try:
        conversations = load_tests(folder)
    except BotError:
        return []
    return [(step.user, step.cites) for c in conversations for step in c.steps if step.cites]


def faq_index(bot: BotDefinition, embedder: Embedder) -> FaqIndex:
    """The trained index when it is current, else one built in memory (nothing written)."""
    faq = bot.config.faq
    assert faq is not None
    sources = bot.faq_sources()
    if index_artifact(bot.index_dir).is_current(knowledge.fingerprint(sources, faq,
                                                                      embedder.name)):
        try:
            with library_errors():
                return FaqIndex.load(bot.index_dir)
        except RetrievalError:
            pass  # damaged: build one below
    return FaqIndex.build(knowledge.load_passages(sources, faq), embedder)


def summary(written: list[store.Suggestion], mined: Mined, where: str) -> str:
    """ "12 suggestions: 8 FAQ entries (from 97 conversations), 3 alternatives, 1 intent;
    14 questions unanswered -> DIR/suggestions/" """
    kinds = {kind: [s for s in written if s.kind == kind] for kind in store.KINDS}
    conversations = sum(s.count for s in kinds["faq"])
    parts = [f"{_count(len(kinds['faq']), 'FAQ entry', 'FAQ entries')} "
             f"(from {_count(conversations, 'conversation')})",
             _count(len(kinds["alternatives"]), "alternative"),
             _count(len(kinds["intent"]), "intent")]
    unanswered = sum(len(group) for group in mined.unanswered)
    withheld = f"; {_count(len(mined.withheld), 'topic')} withheld (answers about one " \
        "customer)" if mined.withheld else ""
    return (f"{_count(len(written), 'suggestion')}: {', '.join(parts)}; "
            f"{_count(unanswered, 'question')} unanswered{withheld} -> {where}/")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
