"""Contrastive tuning of the sentence encoder on a bot's intent examples (SetFit-style).

Each step takes up to ``BATCH_INTENTS`` different intents, two examples of each (an anchor and
a positive), and trains the encoder so that every anchor is closer to its own positive than
to the other intents', and every positive to its own anchor (in-batch negatives; cosine
similarity times ``SCALE``, cross-entropy both ways).
Examples of one intent are pulled together and intents pushed apart, which is what the
logistic regression on top needs when there are only a few examples per intent. The same
tuning, with FAQ entries as the labels, makes the bot's FAQ encoder
(``adapters/training/faq_encoder.py``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from adapters.errors import ModelError

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
                 seed: int = 0, progress: bool = False,
                 what: str = "intent encoder") -> list[float]:
    """Tune a loaded ``SentenceTransformer`` in place for ``steps`` steps; returns the losses.

    Rounds visit every intent with two or more distinct examples once, in shuffled batches;
    rounds repeat until ``steps`` optimiser steps are done.
    """
    import torch
    import torch.nn.functional as functional
    from tqdm.auto import tqdm

    groups = pairable_intents(texts, labels)
    if len(groups) < 2:
        raise ModelError("classifier.encoder_steps needs at least two intents with two or "
                         f"more different examples each (found {len(groups)})")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    losses: list[float] = []
    model.train()
    bar = tqdm(total=steps, desc=f"tuning {what}", unit="step", disable=not progress)
    try:
        while len(losses) < steps:
            names = sorted(groups)
            rng.shuffle(names)
            for start in range(0, len(names) - 1, BATCH_INTENTS):
                batch = names[start:start + BATCH_INTENTS]
                if len(batch) < 2 or len(losses) >= steps:
                    continue
                pairs = [rng.sample(groups[name], 2) for name in batch]
                anchors = _embed(model, [p[0] for p in pairs])
                positives = _embed(model, [p[1] for p in pairs])
                logits = anchors @ positives.T * SCALE
                targets = torch.arange(len(batch))
                loss = (functional.cross_entropy(logits, targets)
                        + functional.cross_entropy(logits.T, targets)) / 2
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


def _embed(model: Any, texts: list[str]) -> Any:
    import torch.nn.functional as functional

    prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in ST 6
    return functional.normalize(model(prepare(texts))["sentence_embedding"], dim=-1)
