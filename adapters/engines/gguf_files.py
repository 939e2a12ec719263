"""GGUF files for the llama.cpp engine, written with the ``gguf`` package.

* :func:`export_base` re-encodes a base model's GGUF (e.g. the packaged Q4_1 file) as
  Q8_0, F16 or F32: every tensor is de-quantised exactly as transformers does it and
  re-quantised, the metadata (tokenizer, chat template) copied. Q4_1 has no fast batched
  kernel in llama.cpp, so prompts read ~3x faster in Q8_0 (benchmarks/README.md).
* :func:`export_lora` turns a peft LoRA adapter into a GGUF LoRA adapter for that base:
  tensors renamed with gguf's Hugging Face -> GGUF name map, ``lora_b`` of the query and key
  projections permuted where llama.cpp's converter permutes those weights (the llama
  architecture's rotary layout; Gemma's are kept as they are).

Both write to a temporary name and rename, so a crash leaves no half-written file. We write
these files ourselves rather than run llama.cpp's ``convert_lora_to_gguf.py``: that script
needs the base model as a Hugging Face folder plus ``sentencepiece``, refuses our
de-quantised cache, and is not installed by any package; the mapping it applies for this
architecture is the ``gguf`` package's own table used here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.errors import ModelError

GGUF_TYPES = ("Q8_0", "F16", "F32")
PERMUTED = {"attn_q": "head_count", "attn_k": "head_count_kv"}  # rows in rotary order
PERMUTING_ARCHS = {"llama"}  # llama.cpp's converter permutes q/k rows for these only


@contextmanager
def _staged(target: Path) -> Iterator[Path]:
    """A temporary file next to ``target`` that replaces it when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp")
    try:
        yield staging
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def read_gguf(path: Path) -> Any:
    """A ``gguf.GGUFReader`` of ``path``; a missing, truncated or foreign file is a ModelError."""
    import gguf

    if not path.is_file():
        raise ModelError(f"GGUF file not found: {path}")
    try:
        return gguf.GGUFReader(path)
    except Exception as exc:  # third-party boundary: not GGUF, truncated, unknown version
        raise ModelError(f"{path} is not a readable GGUF file ({exc}); "
                         "reinstall or re-export it") from exc


def field_value(reader: Any, key: str) -> Any:
    """A metadata value of a GGUF file, or None."""
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def _copy_metadata(reader: Any, writer: Any, skip: set[str]) -> None:
    import gguf

    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in skip:
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)


def export_base(source: Path, target: Path, kind: str, lora: LoraWeights | None = None) -> None:
    """Write ``source`` (any GGUF) to ``target`` with its weight matrices in ``kind``; with
    ``lora``, each adapted matrix is written merged, ``W + alpha / r * B @ A``."""
    import gguf
    import numpy as np

    if kind not in GGUF_TYPES:
        raise ModelError(f"GGUF type {kind!r} is not one of: {', '.join(GGUF_TYPES)}")
    reader = read_gguf(source)
    arch = field_value(reader, "general.architecture")
    if arch is None or not reader.tensors:
        raise ModelError(f"{source} holds no model (no architecture or no tensors)")
    qtype = gguf.GGMLQuantizationType[kind]
    file_type = {"Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "F16": gguf.LlamaFileType.MOSTLY_F16,
                 "F32": gguf.LlamaFileType.ALL_F32}[kind]
    pending = dict(lora.pairs) if lora is not None else {}
    with _staged(target) as staging:
        writer = gguf.GGUFWriter(staging, arch)
        _copy_metadata(reader, writer, {"general.architecture", "general.file_type"})
        writer.add_file_type(file_type)
        try:
            for tensor in reader.tensors:
                values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
                values = np.asarray(values, dtype=np.float32)
                if tensor.name in pending:
                    assert lora is not None
                    lora_a, lora_b = pending.pop(tensor.name)
                    values = values + lora.scale * (lora_b @ lora_a)
                if values.ndim >= 2:
                    writer.add_tensor(tensor.name, gguf.quants.quantize(values, qtype),
                                      raw_dtype=qtype)
                else:  # norms and biases stay float32, as llama.cpp's converter keeps them
                    writer.add_tensor(tensor.name, values)
            if pending:
                raise ValueError(f"the adapter changes tensors the model lacks: "
                                 f"{', '.join(sorted(pending)[:3])}")
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        except (ValueError, NotImplementedError) as exc:
            raise ModelError(f"cannot re-encode {source} as {kind}: {exc}") from exc
        finally:
            writer.close()


def _permute_rows(values: Any, heads: int) -> Any:
    """llama.cpp's ``permute`` of a projection's output rows (interleaved -> halves)."""
    rows = values.shape[0]
    return (values.reshape(heads, 2, rows // heads // 2, *values.shape[1:])
            .swapaxes(1, 2).reshape(values.shape))


def _peft_tensors(adapter: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from safetensors.numpy import load_file

    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
        weights = load_file(str(adapter / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the LoRA adapter in {adapter}: {exc}; "
                         "run `bot train --force`") from exc
    except Exception as exc:  # safetensors' own error type: a truncated or damaged file
        raise ModelError(f"the LoRA adapter in {adapter} is damaged ({exc}); "
                         "run `bot train --force`") from exc
    return config, weights


@dataclass(frozen=True)
class LoraWeights:
    """A peft LoRA adapter in a GGUF model's terms: base tensor name -> (A, B), with B's
    rows in the GGUF file's order, the model's architecture, and the scale ``alpha / r``
    it is applied with."""

    arch: str
    alpha: float
    rank: int
    pairs: dict[str, tuple[Any, Any]]

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def read_lora(adapter: Path, base_gguf: Path) -> LoraWeights:
    """The peft adapter in ``adapter`` mapped onto the tensors of the model in ``base_gguf``."""
    import gguf
    import numpy as np

    config, weights = _peft_tensors(adapter)
    base = read_gguf(base_gguf)
    arch = field_value(base, "general.architecture")
    blocks = field_value(base, f"{arch}.block_count")
    heads = {key: field_value(base, f"{arch}.attention.{key}") for key in PERMUTED.values()}
    try:
        names = gguf.get_tensor_name_map(
            next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch), blocks)
    except StopIteration as exc:
        raise ModelError(f"{base_gguf}: unknown model architecture {arch!r}") from exc
    alpha, rank = float(config.get("lora_alpha", 0)), int(config.get("r", 0))
    if config.get("use_dora") or config.get("use_rslora") or not rank:
        raise ModelError(f"{adapter}: only plain LoRA adapters run on llama.cpp "
                         f"(r={rank}, DoRA/rsLoRA unsupported)")
    pairs: dict[str, tuple[Any, Any]] = {}
    for key in sorted(weights):
        if ".lora_A." not in key:
            continue
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        b_key = key.replace(".lora_A.", ".lora_B.")
        if name is None or b_key not in weights:
            raise ModelError(f"{adapter}: no GGUF tensor for LoRA module {module!r}")
        lora_a = np.ascontiguousarray(weights[key], dtype=np.float32)
        lora_b = np.asarray(weights[b_key], dtype=np.float32)
        kind = name.split(".")[2]
        if kind in PERMUTED and arch in PERMUTING_ARCHS:
            lora_b = _permute_rows(lora_b, int(heads[PERMUTED[kind]]))
        pairs[name] = (lora_a, np.ascontiguousarray(lora_b))
    return LoraWeights(str(arch), alpha, rank, pairs)


def export_lora(adapter: Path, base_gguf: Path, target: Path) -> None:
    """Write the peft adapter in ``adapter`` as a GGUF LoRA for the model in ``base_gguf``."""
    import gguf

    lora = read_lora(adapter, base_gguf)
    with _staged(target) as staging:
        writer = gguf.GGUFWriter(staging, lora.arch)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", lora.alpha)
        for name, (lora_a, lora_b) in lora.pairs.items():
            writer.add_tensor(f"{name}.lora_a", lora_a)
            writer.add_tensor(f"{name}.lora_b", lora_b)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
