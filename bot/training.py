"""`bot train`: build every artefact the bot needs, skipping what is up to date."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import BotDefinition
from retrieval.embedder import SentenceEmbedder
from retrieval.index import FaqIndex
from retrieval.knowledge import build_index


@dataclass(frozen=True)
class StepResult:
    """What one training step did."""

    step: str
    rebuilt: bool
    seconds: float
    detail: str


def train(bot: BotDefinition, *, force: bool = False, progress: bool = True,
          report: Callable[[StepResult], None] = lambda _: None) -> list[StepResult]:
    """Build the FAQ index (and the other artefacts the bot enables)."""
    config = bot.config
    embedder = SentenceEmbedder(config.embedder.model, device=config.embedder.device,
                                batch_size=config.embedder.batch_size)
    results: list[StepResult] = []
    index = None
    if config.faq is not None:
        started = time.perf_counter()
        index, rebuilt = build_index(bot, embedder, force=force, progress=progress)
        result = StepResult("faq index", rebuilt, time.perf_counter() - started,
                            f"{len(index)} passages, {index.index.ntotal} vectors")
        results.append(result)
        report(result)
    if config.intents:  # the intent classifier and sentiment model (adapters/training.py)
        from adapters.training import train_classifiers

        steps = train_classifiers(bot, embedder, force=force, progress=progress)
        for step, info in steps.items():
            result = StepResult(step, info["rebuilt"], info["seconds"], info["detail"])
            results.append(result)
            report(result)
    if config.model.generation and index is not None:
        result = _train_adapter(bot, index, embedder, force=force, progress=progress)
        results.append(result)
        report(result)
    return results


def _train_adapter(bot: BotDefinition, index: FaqIndex, embedder: SentenceEmbedder, *,
                   force: bool, progress: bool) -> StepResult:
    """The dialogue model's LoRA adapter (adapters/lora_training.py)."""
    from adapters.adapter_store import adapter_dir, read_manifest
    from adapters.lora_training import train_adapter

    started = time.perf_counter()
    before = read_manifest(adapter_dir(bot))
    folder = train_adapter(bot, index, embedder, force=force, progress=progress)
    manifest = read_manifest(folder) or {}
    detail = (f"{manifest.get('examples')} examples, {manifest.get('steps')} steps, "
              f"final loss {manifest.get('final_loss') or 0:.3f}")
    return StepResult("dialogue adapter", manifest != before, time.perf_counter() - started,
                      detail)
