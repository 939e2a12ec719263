"""Fine-tune a LoRA adapter of the dialogue model on the bot's FAQ (see ``training_data``).

Loss is on the assistant tokens only. Lean by measurement (benchmarks/README.md, "LoRA
training"): batches are drawn from length-sorted pools so rows of a batch pad little, each
batch runs as micro-batches of at most ``lora.micro_batch_tokens`` tokens (gradients
accumulated: the same update, a quarter of the activation memory), and only the top
``lora.top_layers`` blocks get adapters, so backward stops below them. Before it starts it
says how long and how much memory it expects, and refuses when the machine lacks the memory.
Training is deterministic for a seed, checkpoints after its first minute and then every
``lora.checkpoint_minutes`` (or every ``lora.checkpoint_every`` steps) under the build folder
and resumes from there, and is skipped when data, settings and base model are unchanged.
Only the adapter is saved, with a manifest naming the base model's fingerprint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.engines.adapter_store import adapter_artifact, read_manifest
from adapters.engines.base_model import base_fingerprint, load_base_model
from adapters.errors import ModelError
from adapters.settings import LoraSettings, ModelSettings, Persona
from adapters.training.training_cost import (
    REMEASURE_AFTER,
    ModelShape,
    available_gb,
    expected_cost,
    remeasured,
)
from adapters.training.training_data import (
    Example,
    TaughtAnswer,
    build_examples,
    data_digest,
    encode,
)
from retrieval.embedder import Embedder
from retrieval.index import FaqIndex

log = logging.getLogger(__name__)
StepCallback = Callable[[int, float], None]

BUCKET_POOL = 16  # batches per length-sorted pool
FIRST_CHECKPOINT_S = 60.0
NOT_LEARNED = ("checkpoint_every", "checkpoint_minutes", "micro_batch_tokens")


@dataclass(frozen=True)
class AdapterJob:
    """What one adapter learns from and where it goes.

    ``top_k``/``threshold``: how the FAQ is searched at answer time (training prompts show
    the same passages); ``name`` is recorded in the manifest; ``checkpoints`` is the folder
    a killed run resumes from.
    """

    model: ModelSettings
    persona: Persona
    folder: Path
    checkpoints: Path
    top_k: int = 3
    threshold: float = 0.5
    name: str = ""
    taught: tuple[TaughtAnswer, ...] = ()  # questions people answered (bot/learning/taught.py)


def _plan(job: AdapterJob, index: FaqIndex, embedder: Embedder,
          max_steps: int | None) -> tuple[list[Example], dict[str, Any]]:
    settings = job.model
    lora = settings.lora
    examples = build_examples(index, embedder, top_k=job.top_k, threshold=job.threshold,
                              no_answer_ratio=lora.no_answer_ratio, seed=lora.seed,
                              taught=job.taught)
    config = {k: v for k, v in dataclasses.asdict(lora).items() if k not in NOT_LEARNED}
    config["max_steps"] = max_steps if max_steps is not None else lora.max_steps
    config["target_modules"] = list(lora.target_modules)
    fingerprint = {
        "data": data_digest(examples, job.persona, max_words=settings.passage_words),
        "config": config,
        "base": base_fingerprint(settings),
    }
    return examples, fingerprint


def needs_training(job: AdapterJob, index: FaqIndex, embedder: Embedder, *,
                   max_steps: int | None = None) -> bool:
    """Whether :func:`train_adapter` would train (the saved adapter is missing or stale)."""
    _examples, fingerprint = _plan(job, index, embedder, max_steps)
    manifest = read_manifest(job.folder)
    return manifest is None or manifest.get("fingerprint") != fingerprint


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batch(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, (row_ids, row_labels) in enumerate(rows):
        ids[n, : len(row_ids)] = torch.tensor(row_ids)
        labels[n, : len(row_labels)] = torch.tensor(row_labels)
        mask[n, : len(row_ids)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean next-token cross-entropy over the labelled (answer) tokens of ``batch``.

    The same loss as ``model(**batch).loss``, but the LM head (hidden size x vocabulary)
    runs only at the positions that have a label, a small share of each row, instead of
    at every prompt position: most of a training step's memory otherwise goes into logits.
    """
    import torch

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.base_model(input_ids=batch["input_ids"],
                                  attention_mask=batch["attention_mask"])[0]
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), labels[keep])


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int,
                  epoch: int) -> list[list[int]]:
    """One epoch's batches (row numbers): a seeded shuffle cut into pools of
    ``BUCKET_POOL`` batches, each pool sorted by length and cut into batches, so a batch's
    rows have similar lengths; the batches then in a seeded random order."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * BUCKET_POOL
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lengths.__getitem__)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _batch_rows(step: int, lengths: Sequence[int], batch_size: int, seed: int) -> list[int]:
    """Row numbers of ``step``'s batch."""
    epoch, offset = divmod(step, math.ceil(len(lengths) / batch_size))
    return epoch_batches(lengths, batch_size, seed, epoch)[offset]


def micro_batches(rows: Sequence[tuple[list[int], list[int]]],
                  budget: int) -> list[list[tuple[list[int], list[int]]]]:
    """``rows`` in order, grouped so a group's padded size (rows x longest) stays within
    ``budget`` tokens (a longer row is a group of its own)."""
    groups: list[list[tuple[list[int], list[int]]]] = []
    for row in rows:
        group = groups[-1] if groups else None
        if group and (len(group) + 1) * max(len(r[0]) for r in [*group, row]) <= budget:
            group.append(row)
        else:
            groups.append([row])
    return groups


def _step(model: Any, rows: Sequence[tuple[list[int], list[int]]], lora: LoraSettings,
          pad_id: int, device: str) -> float:
    """Forward and backward of one batch in micro-batches; returns the batch's loss (the
    mean over its answer tokens, as one pass over the whole batch would give)."""
    answer_tokens = sum(sum(1 for label in labels[1:] if label != -100) for _, labels in rows)
    total = 0.0
    for group in micro_batches(rows, lora.micro_batch_tokens):
        batch = {k: v.to(device) for k, v in _batch(group, pad_id).items()}
        share = int((batch["labels"][:, 1:] != -100).sum()) / max(1, answer_tokens)
        loss = answer_loss(model, batch) * share
        loss.backward()
        total += float(loss.item())
    return total


def _save_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / "state.pt.tmp"
    torch.save(state, staging)
    os.replace(staging, folder / "state.pt")


def _load_checkpoint(folder: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    import torch

    try:
        state: dict[str, Any] = torch.load(folder / "state.pt", weights_only=False)
    except FileNotFoundError:
        return None
    except Exception as exc:  # damaged checkpoint: start over
        log.warning("ignoring damaged checkpoint in %s (%s)", folder, exc)
        return None
    return state if state.get("fingerprint") == fingerprint else None


def save_adapter(model: Any, target: Path, manifest: dict[str, Any]) -> None:
    """Write adapter weights + manifest atomically (a crash leaves the old adapter)."""
    with adapter_artifact(target).write(manifest) as staging:
        model.save_pretrained(str(staging))


def _total_steps(lora: LoraSettings, examples: int, max_steps: int | None) -> int:
    limit = max_steps if max_steps is not None else lora.max_steps
    if limit is not None:
        return max(1, limit)
    return max(1, math.ceil(lora.epochs * math.ceil(examples / lora.batch_size)))


def train_adapter(job: AdapterJob, index: FaqIndex, embedder: Embedder, *,
                  force: bool = False, progress: bool = True, max_steps: int | None = None,
                  on_step: StepCallback | None = None) -> Path:
    """Train (or reuse) the LoRA adapter in ``job.folder``; returns that folder.

    ``max_steps`` overrides ``model.lora.max_steps``; ``on_step(step, loss)`` is called after
    every optimiser step (1-based).
    """
    settings = job.model
    lora = settings.lora
    target = job.folder
    examples, fingerprint = _plan(job, index, embedder, max_steps)
    if not examples:
        raise ModelError("the FAQ has no question/answer pairs to train the "
                         "dialogue adapter on")
    manifest = read_manifest(target)
    if not force and manifest is not None and manifest.get("fingerprint") == fingerprint:
        return target
    checkpoints = job.checkpoints
    if force:
        shutil.rmtree(checkpoints, ignore_errors=True)

    import torch
    from peft import (
        LoraConfig,
        get_peft_model,
        get_peft_model_state_dict,
        set_peft_model_state_dict,
    )
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    base = load_base_model(settings)
    tokenizer = base.tokenizer
    rows = [encode(e, tokenizer, job.persona, max_length=lora.max_length,
                   max_words=settings.passage_words) for e in examples]
    data = [r for r in rows if r is not None]
    if len(data) < len(rows):
        log.warning("%d of %d training examples exceed model.lora.max_length=%d and were "
                    "skipped", len(rows) - len(data), len(rows), lora.max_length)
    if not data:
        raise ModelError(f"no training example fits model.lora.max_length="
                         f"{lora.max_length}; raise it")
    _seed_everything(lora.seed)
    shape = ModelShape.of(base.model)
    blocks = shape.blocks
    total = _total_steps(lora, len(data), max_steps)
    seconds, memory = expected_cost(data, total, lora, shape)
    free = available_gb()
    if free is not None and memory > free:
        raise ModelError(f"LoRA training needs about {memory:.1f} GB of memory and "
                         f"{free:.1f} GB is available; close other programs or lower "
                         "model.lora.micro_batch_tokens")
    if progress:
        tqdm.write(f"LoRA adapter: {total} steps on {len(data)} examples, expect about "
                   f"{seconds / 60:.0f} min and {memory:.1f} GB (measured again after "
                   f"{REMEASURE_AFTER} steps)")
    top = lora.top_layers
    layers = list(range(blocks - top, blocks)) if top is not None and top < blocks else None
    peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                             target_modules=list(lora.target_modules),
                             layers_to_transform=layers, task_type="CAUSAL_LM")
    try:
        model = get_peft_model(base.model, peft_config)
    except ValueError as exc:
        raise ModelError(f"model.lora.target_modules {list(lora.target_modules)}: {exc}") \
            from exc
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lora.learning_rate, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, total // 10), total)
    start, losses = 0, []
    state = _load_checkpoint(checkpoints, fingerprint)
    if state is not None:
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start, losses = int(state["step"]), list(state["losses"])
        log.info("resuming LoRA training at step %d of %d", start, total)
    pad_id = tokenizer.pad_token_id
    lengths = [len(ids) for ids, _ in data]
    started = time.perf_counter()
    next_checkpoint = started + FIRST_CHECKPOINT_S
    model.train()
    bar = tqdm(total=total, initial=start, desc="LoRA adapter", unit="step", disable=not progress)
    for step in range(start, total):
        batch = [data[i] for i in _batch_rows(step, lengths, lora.batch_size, lora.seed)]
        losses.append(_step(model, batch, lora, pad_id, base.device))
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        now = time.perf_counter()
        due = (step + 1) % lora.checkpoint_every == 0 if lora.checkpoint_every \
            else now >= next_checkpoint
        if due and step + 1 < total:
            next_checkpoint = now + 60 * lora.checkpoint_minutes
            _save_checkpoint(checkpoints, {
                "fingerprint": fingerprint, "step": step + 1, "losses": losses,
                "adapter": get_peft_model_state_dict(model), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
            })
        if on_step is not None:
            on_step(step + 1, losses[-1])
        if progress and step + 1 == start + REMEASURE_AFTER < total:
            tqdm.write(remeasured(total - step - 1, now - started, REMEASURE_AFTER, seconds))
    bar.close()
    model.eval()
    seconds = time.perf_counter() - started
    save_adapter(model, target, {
        "bot": job.name,
        "base": {"name": settings.base, "fingerprint": fingerprint["base"]},
        "fingerprint": fingerprint,
        "examples": len(data),
        "answer_examples": sum(1 for e, r in zip(examples, rows, strict=True)
                               if r is not None and e.gold is not None),
        "steps": total,
        "epochs": round(total * lora.batch_size / len(data), 3),
        "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(1, total - start), 3),
        "first_loss": losses[0] if losses else None,
        "final_loss": sum(losses[-5:]) / len(losses[-5:]) if losses else None,
    })
    shutil.rmtree(checkpoints, ignore_errors=True)
    return target
