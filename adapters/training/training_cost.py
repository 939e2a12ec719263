"""What LoRA training will cost before it starts: expected seconds and peak memory.

Estimates from measurements (benchmarks/README.md, "Base models"), from the model's shape
(:class:`ModelShape`), the encoded rows and the LoRA settings; ``train_adapter`` says them
and refuses to start when the machine lacks the memory (:func:`available_gb`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.settings import LoraSettings

# Fitted to acme_bank's training of two base models on 2 cores (benchmarks/README.md,
# "Base models"): seconds per multiply-accumulate of a training token; resident memory of
# the process without the model, float32 bytes of logits per micro-batch token and
# vocabulary entry, and bytes of activations per micro-batch token, width and adapted block.
SECONDS_PER_MAC = 8e-12
REMEASURE_AFTER = 5  # steps after which the estimate is redone from the time they took
PROCESS_GB, LOGIT_BYTES, ACTIVATION_BYTES = 1.0, 12.0, 88.0


@dataclass(frozen=True)
class ModelShape:
    """What the cost of training depends on: depth, width, vocabulary and size."""

    blocks: int
    hidden: int
    vocab: int
    parameters: int

    @classmethod
    def of(cls, model: Any) -> ModelShape:
        config = model.config
        return cls(int(getattr(config, "num_hidden_layers", 0) or 1),
                   int(getattr(config, "hidden_size", 0) or 0),
                   int(getattr(config, "vocab_size", 0) or 0),
                   sum(int(p.numel()) for p in model.parameters()))


def expected_cost(rows: Sequence[tuple[list[int], list[int]]], steps: int, lora: LoraSettings,
                  shape: ModelShape) -> tuple[float, float]:
    """Expected seconds and peak resident GB of training (estimates from measurements).

    Per token: every block forward, the adapted ones backward too (about twice the work),
    and the output layer forward and backward; memory: the float32 weights, one
    micro-batch's logits and the adapted blocks' activations."""
    adapted = min(shape.blocks, lora.top_layers or shape.blocks)
    tokens = sum(len(ids) for ids, _ in rows) * steps * lora.batch_size / max(1, len(rows))
    head = shape.vocab * shape.hidden
    blocks = max(0, shape.parameters - head)
    work = blocks * (1 + 2 * adapted / shape.blocks) + 3 * head
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    seconds = tokens * work * SECONDS_PER_MAC * 2 / max(1, cores)
    micro = lora.micro_batch_tokens
    memory = (PROCESS_GB * 1e9 + shape.parameters * 4 + micro * shape.vocab * LOGIT_BYTES
              + micro * shape.hidden * adapted * ACTIVATION_BYTES) / 1e9
    return seconds, memory


def available_gb() -> float | None:
    """Memory the system can still give (Linux ``MemAvailable``), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def remeasured(left: int, elapsed: float, done: int, estimated: float) -> str:
    """The estimate redone from ``done`` steps that took ``elapsed`` seconds on this machine
    as loaded now (the first one included: it pays the warm-up), beside the first one."""
    per_step = elapsed / max(1, done)
    return (f"LoRA adapter: {per_step:.1f} s a step on this machine now: about "
            f"{left * per_step / 60:.0f} min more (estimated {estimated / 60:.0f} min in all "
            "before starting)")
