"""Contrastive tuning of the sentence encoder on a bot's intent examples (SetFit-style).

Each step takes up to ``BATCH_INTENTS`` different intents and two examples of each, and trains
the encoder so that every example is closer to the other example of its intent than to any of
the other texts in the batch (NT-Xent: cosine similarity times ``SCALE``, cross-entropy over
all in-batch texts). Examples of one intent are pulled together and intents pushed apart,
which is what the logistic regression on top needs when there are only a few examples per
intent. The word-embedding layer stays frozen, so that words the examples use keep their
place beside the synonyms that only real messages will bring. The tuned copy is used by the
intent classifier only; FAQ retrieval and sentiment keep the stock encoder.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bot.errors import ModelError

BATCH_INTENTS = 32
SCALE = 20.0
LEARNING_RATE = 2e-5


def pairable_intents(texts: Sequence[str], labels: Sequence[str]) -> dict[str, list[str]]:
    """Distinct examples per label, for the labels that have at least two."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(texts, labels, strict=True):
        if text not in by_label[label]:
            by_label[label].append(text)
    return {label: examples for label, examples in by_label.items() if len(examples) >= 2}


def tune_encoder(model: Any, texts: Sequence[str], labels: Sequence[str], *, steps: int,
                 seed: int = 0, progress: bool = False) -> list[float]:
    """Tune a loaded ``SentenceTransformer`` in place for ``steps`` steps; returns the losses.

    Rounds visit every intent with two or more distinct examples once, in shuffled batches;
    rounds repeat until ``steps`` optimiser steps are done.
    """
    import torch
    from tqdm.auto import tqdm

    groups = pairable_intents(texts, labels)
    if len(groups) < 2:
        raise ModelError("classifier.encoder_steps needs at least two intents with two or "
                         f"more different examples each (found {len(groups)})")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    _freeze_word_embeddings(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=LEARNING_RATE)
    losses: list[float] = []
    model.train()
    bar = tqdm(total=steps, desc="tuning intent encoder", unit="step", disable=not progress)
    try:
        while len(losses) < steps:
            names = sorted(groups)
            rng.shuffle(names)
            for start in range(0, len(names) - 1, BATCH_INTENTS):
                batch = names[start:start + BATCH_INTENTS]
                if len(batch) < 2 or len(losses) >= steps:
                    continue
                pairs = [rng.sample(groups[name], 2) for name in batch]
                loss = nt_xent(_embed(model, [p[0] for p in pairs] + [p[1] for p in pairs]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        bar.close()
        model.eval()
    return losses


def nt_xent(vectors: Any) -> Any:
    """Contrastive loss of 2N normalised vectors where row i and row i + N are a pair."""
    import torch
    import torch.nn.functional as functional

    count = len(vectors) // 2
    logits = vectors @ vectors.T * SCALE
    logits = logits.masked_fill(torch.eye(len(vectors), dtype=torch.bool), float("-inf"))
    targets = torch.arange(len(vectors)).roll(count)
    return functional.cross_entropy(logits, targets)


def _freeze_word_embeddings(model: Any) -> None:
    transformer = getattr(model[0], "auto_model", None)
    layer = getattr(transformer, "embeddings", None)
    if layer is not None:
        layer.requires_grad_(False)


def _embed(model: Any, texts: list[str]) -> Any:
    import torch.nn.functional as functional

    prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in ST 6
    return functional.normalize(model(prepare(texts))["sentence_embedding"], dim=-1)
