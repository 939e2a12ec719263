"""The bot's own FAQ encoder: MiniLM tuned on the FAQ's questions and alternatives.

At ``bot train`` a copy of the embedder is tuned contrastively
(``adapters/training/encoder_tuning.py``) with each FAQ entry as one label over its question
and ``alternatives``, for
``embedder.tuning_rounds`` passes over the entries. Everything the bot embeds then uses the
tuned copy: the FAQ index, the intent classifier, the answer policy, the dialogue adapter's
examples and the turns at run time. Measured on acme_bank's held-out paraphrases, recall@1
82.0 -> 86.0 % (benchmarks/faq_encoder.py; the rounds were chosen on StackFAQ only).

The copy is saved in the version's ``faq_encoder`` folder with a manifest naming what it
was tuned on; its ``name`` carries a digest of that, so indexes and classifiers built with
another tuning are refused as stale.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.errors import ModelError
from adapters.training.encoder_tuning import (
    BATCH_INTENTS,
    LEARNING_RATE,
    pairable_intents,
    tune_encoder,
)
from retrieval.artifacts import Artifact, digest
from retrieval.documents import Passage
from retrieval.embedder import SentenceEmbedder
from retrieval.errors import EmbedderError

FORMAT_VERSION = 1
SEED = 0


def tuning_texts(passages: Sequence[Passage]) -> tuple[list[str], list[str]]:
    """Every entry's question and alternatives, each labelled with the entry's id."""
    pairs = [(text, p.id) for p in passages if p.question
             for text in (p.question, *p.alternatives)]
    return [t for t, _ in pairs], [label for _, label in pairs]


def tunable(passages: Sequence[Passage]) -> bool:
    """Whether the FAQ has enough to tune on: two entries with two different texts each."""
    return len(pairable_intents(*tuning_texts(passages))) >= 2


def tuned_copy(base: SentenceEmbedder, passages: Sequence[Passage], rounds: int, *,
               progress: bool = False) -> SentenceEmbedder:
    """A fresh copy of ``base`` tuned for ``rounds`` passes over ``passages``' entries."""
    texts, labels = tuning_texts(passages)
    entries = len(pairable_intents(texts, labels))
    steps = rounds * len(range(0, entries - 1, BATCH_INTENTS))  # tune_encoder's batches
    copy = base.fresh()
    tune_encoder(copy.model, texts, labels, steps=steps, seed=SEED, progress=progress,
                 what="FAQ encoder")
    return copy


def encoder_fingerprint(base: SentenceEmbedder, passages: Sequence[Passage],
                        rounds: int) -> dict[str, Any]:
    texts, labels = tuning_texts(passages)
    return {"base": base.name, "rounds": rounds, "seed": SEED, "learning_rate": LEARNING_RATE,
            "texts_sha256": digest([texts, labels])}


def train_faq_encoder(directory: Path, base: SentenceEmbedder, passages: Sequence[Passage],
                      rounds: int, *, force: bool = False,
                      progress: bool = False) -> tuple[SentenceEmbedder, bool]:
    """Tune (or reuse) the bot's FAQ encoder in ``directory``; returns it and whether it was
    tuned anew. ``base`` itself when tuning is off or the FAQ has too little to tune on."""
    artifact = _artifact(directory)
    if rounds == 0 or not tunable(passages):
        shutil.rmtree(directory, ignore_errors=True)  # an earlier tuning no longer applies
        return base, False
    wanted = encoder_fingerprint(base, passages, rounds)
    if not force and artifact.is_current(wanted):
        try:
            return load_faq_encoder(directory, base), False
        except ModelError:
            pass  # damaged: tune again below
    tuned = tuned_copy(base, passages, rounds, progress=progress)
    name = f"{base.name} tuned {wanted['texts_sha256'][:12]}x{rounds}"
    with artifact.write({**wanted, "name": name}) as staging:
        tuned.save(staging)
    tuned.name, tuned.path = name, directory  # as load_faq_encoder names the saved copy
    return tuned, True


def load_faq_encoder(directory: Path, base: SentenceEmbedder) -> SentenceEmbedder:
    """The tuned encoder saved in ``directory`` (``base`` when there is none: the bot was
    trained without tuning, and its index says which model it was built with)."""
    manifest = _artifact(directory).manifest()
    if manifest is None:
        if (directory / "config.json").exists():
            raise ModelError(f"{directory}: the FAQ encoder is incomplete; run `bot train "
                             "--force`")
        return base
    tuned = SentenceEmbedder(str(manifest["name"]), path=directory, device=base.device,
                             batch_size=base.batch_size)
    try:
        return tuned.load()
    except EmbedderError as exc:
        raise ModelError(f"{directory}: the FAQ encoder is damaged ({exc}); run `bot train "
                         "--force`") from exc


def _artifact(directory: Path) -> Artifact:
    return Artifact(directory, FORMAT_VERSION, required=("config.json",))
