"""LoRA training on a 3-entry FAQ: a few tiny steps, skip when unchanged, resume, refuse."""

from __future__ import annotations

import json
import random
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from adapters.engines.base_model import base_fingerprint, load_base_model
from adapters.engines.generation import DialogueModel, GenerationRequest
from adapters.engines.prompting import NO_ANSWER
from adapters.errors import ModelError
from adapters.settings import LoraSettings
from adapters.training.lora_training import (
    _batch,
    _step,
    answer_loss,
    epoch_batches,
    micro_batches,
    needs_training,
)
from adapters.training.training_cost import ModelShape, expected_cost, remeasured
from adapters.training.training_data import build_examples, encode, with_history
from bot.build import adapter_job, build_index, example_options, train_adapter
from bot.definition.config import BotDefinition, ModelSettings
from bot.definition.loader import load_bot
from retrieval.embedder import SentenceEmbedder
from retrieval.index import FaqIndex

STEPS = 3
BOT_YAML = """
name: tiny_bot
persona: {name: Ava}
faq: {sources: [faq.yaml], top_k: 2, answer_threshold: 0.5}
model:
  max_new_tokens: 8
  lora: {r: 4, alpha: 8, batch_size: 2, max_length: 320, checkpoint_every: 2,
         learning_rate: 0.001}
"""
FAQ_YAML = """
- id: card-not-arrived
  question: My card has not arrived yet
  answer: Cards arrive within 5-7 working days. After 10 days we send a new one.
  alternatives: ["where is my card"]
- id: reset-pin
  question: How do I reset my PIN?
  answer: Open the app, go to Card settings and choose Reset PIN.
- id: transfer-time
  question: How long does a bank transfer take?
  answer: Domestic transfers arrive the same day; international ones take 1-3 working days.
"""


def make_bot(root: Path) -> BotDefinition:
    root.mkdir(parents=True, exist_ok=True)
    (root / "bot.yaml").write_text(textwrap.dedent(BOT_YAML))
    (root / "faq.yaml").write_text(textwrap.dedent(FAQ_YAML))
    return load_bot(root)


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder().load()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory,
            embedder: SentenceEmbedder) -> tuple[BotDefinition, FaqIndex, Path]:
    bot = make_bot(tmp_path_factory.mktemp("bots") / "tiny")
    index, _ = build_index(bot, embedder)
    path = train_adapter(bot, index, embedder, progress=False, max_steps=STEPS)
    return bot, index, path


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "adapter_model.safetensors"))


def test_examples_cover_every_question_and_no_answer_cases(
        trained: tuple[BotDefinition, FaqIndex, Path], embedder: SentenceEmbedder) -> None:
    bot, index, _path = trained
    examples = build_examples(index, embedder, **example_options(bot), seed=13)
    answers = [e for e in examples if e.gold is not None]
    assert len(answers) == 4  # 3 questions + 1 alternative
    for example in answers:
        assert example.gold in {p.id for p in example.passages}
        assert example.target.endswith(f"[{example.gold}]")
    refusals = [e for e in examples if e.gold is None]
    assert refusals and all(e.target == NO_ANSWER for e in refusals)
    again = build_examples(index, embedder, **example_options(bot), seed=13)
    assert examples == again  # deterministic


def test_loss_is_only_on_the_answer(trained: tuple[BotDefinition, FaqIndex, Path],
                                    embedder: SentenceEmbedder) -> None:
    bot, index, _path = trained
    tokenizer = load_base_model(ModelSettings()).tokenizer
    example = build_examples(index, embedder, **example_options(bot), seed=13)[0]
    encoded = encode(example, tokenizer, bot.config.persona, max_length=320, max_words=80)
    assert encoded is not None
    ids, labels = encoded
    learned = [t for t in labels if t != -100]
    assert labels[: len(ids) - len(learned)] == [-100] * (len(ids) - len(learned))
    assert tokenizer.decode(learned) == example.target + "<|im_end|>"
    assert encode(example, tokenizer, bot.config.persona, max_length=50, max_words=80) is None


def test_an_earlier_exchange_goes_into_the_prompt_but_not_the_loss(
        trained: tuple[BotDefinition, FaqIndex, Path], embedder: SentenceEmbedder) -> None:
    bot, index, _path = trained
    tokenizer = load_base_model(ModelSettings()).tokenizer
    examples = build_examples(index, embedder, **example_options(bot), seed=13)
    assert any(e.history for e in examples)  # a share of them follows an earlier exchange
    example = next(e for e in examples if e.gold is not None and not e.history)
    pairs = [(p.question or "", p) for p in index.passages]
    later = with_history(example, pairs, random.Random(0))
    (asked, said) = later.history
    shown = {p.id for p in example.passages}
    assert (asked.role, said.role) == ("user", "assistant")
    earlier = next(p for p in index.passages if p.question == asked.text)
    assert earlier.id not in shown and said.text == earlier.text  # another topic
    assert (later.question, later.passages, later.target) == \
        (example.question, example.passages, example.target)
    encoded = encode(later, tokenizer, bot.config.persona, max_length=320, max_words=80)
    assert encoded is not None
    ids, labels = encoded
    prompt = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label == -100])
    assert asked.text in prompt and said.text in prompt
    assert prompt.index(said.text) < prompt.index(f"Question: {example.question}")
    assert tokenizer.decode([t for t in labels if t != -100]) == example.target + "<|im_end|>"


def test_answer_loss_equals_the_models_own_loss(
        trained: tuple[BotDefinition, FaqIndex, Path], embedder: SentenceEmbedder) -> None:
    bot, index, _path = trained
    base = load_base_model(ModelSettings())
    rows = [encode(e, base.tokenizer, bot.config.persona, max_length=320, max_words=80)
            for e in build_examples(index, embedder, **example_options(bot), seed=13)[:3]]
    batch = _batch([r for r in rows if r is not None], base.tokenizer.pad_token_id)
    assert len({len(r[0]) for r in rows if r is not None}) > 1  # padded rows included
    with torch.no_grad():
        expected = base.model(**batch).loss
        assert float(answer_loss(base.model, batch)) == pytest.approx(float(expected), rel=1e-4)


def test_micro_batches_give_the_whole_batchs_loss_and_gradients(
        trained: tuple[BotDefinition, FaqIndex, Path], embedder: SentenceEmbedder) -> None:
    from peft import LoraConfig, get_peft_model

    bot, index, _path = trained
    base = load_base_model(ModelSettings())
    rows = [r for r in (encode(e, base.tokenizer, bot.config.persona, max_length=320,
                               max_words=80)
                        for e in build_examples(index, embedder, **example_options(bot),
                                                seed=13)[:4]) if r is not None]
    torch.manual_seed(0)
    model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"],
                                                  init_lora_weights=False))
    lora = LoraSettings(micro_batch_tokens=max(len(ids) for ids, _ in rows))
    assert len(micro_batches(rows, lora.micro_batch_tokens)) == len(rows)  # one row each

    def grads(run: Any) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad()
        loss = run()
        return loss, [p.grad.clone() for p in model.parameters() if p.requires_grad]

    whole_loss, whole = grads(lambda: _whole(model, rows, base.tokenizer.pad_token_id))
    split_loss, split = grads(lambda: _step(model, rows, lora, base.tokenizer.pad_token_id,
                                            "cpu"))
    assert split_loss == pytest.approx(whole_loss, rel=1e-4)
    for a, b in zip(whole, split, strict=True):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-6)


def _whole(model: Any, rows: list[Any], pad_id: int) -> float:
    loss = answer_loss(model, _batch(rows, pad_id))
    loss.backward()
    return float(loss)


def test_length_pools_cover_every_row_once_and_pad_less() -> None:
    rng = random.Random(3)
    lengths = [rng.randrange(50, 500) for _ in range(300)]
    batches = epoch_batches(lengths, 8, seed=13, epoch=0)
    assert sorted(i for batch in batches for i in batch) == list(range(300))
    assert batches != epoch_batches(lengths, 8, seed=13, epoch=1)

    def padding(groups: list[list[int]]) -> int:
        return sum(len(g) * max(lengths[i] for i in g) - sum(lengths[i] for i in g)
                   for g in groups)

    shuffled = list(range(300))
    rng.shuffle(shuffled)
    plain = [shuffled[i:i + 8] for i in range(0, 300, 8)]
    assert padding(batches) < 0.5 * padding(plain)


def test_expected_cost_grows_with_depth_micro_batch_and_vocabulary() -> None:
    rows = [([1] * 400, [-100] * 400)] * 16
    smollm = ModelShape(blocks=30, hidden=576, vocab=49152, parameters=134_515_008)
    gemma = ModelShape(blocks=18, hidden=640, vocab=262144, parameters=268_098_176)
    shallow = expected_cost(rows, 10, LoraSettings(top_layers=10), smollm)
    deep = expected_cost(rows, 10, LoraSettings(top_layers=None), smollm)
    wide = expected_cost(rows, 10, LoraSettings(top_layers=10, micro_batch_tokens=4096), smollm)
    larger = expected_cost(rows, 10, LoraSettings(top_layers=10), gemma)
    assert shallow[0] < deep[0] and shallow[1] < deep[1] and shallow[1] < wide[1]
    assert larger[0] > shallow[0] and larger[1] > shallow[1] + 1.0  # 262k-entry logits


def test_adapter_and_manifest_are_saved(trained: tuple[BotDefinition, FaqIndex, Path]) -> None:
    bot, _index, path = trained
    assert path == bot.adapter_dir
    assert (path / "adapter_config.json").is_file()
    assert (path / "adapter_model.safetensors").is_file()
    assert not (path / "model.safetensors").exists()  # only the adapter, not the base
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["base"] == {"name": "smollm2-135m",
                                "fingerprint": base_fingerprint(ModelSettings())}
    assert manifest["steps"] == STEPS and manifest["bot"] == "tiny_bot"
    assert manifest["fingerprint"]["config"]["r"] == 4
    assert not bot.adapter_checkpoints.exists()
    assert any(t.abs().sum() > 0 for k, t in _weights(path).items() if "lora_B" in k)


def test_unchanged_bot_is_not_retrained(trained: tuple[BotDefinition, FaqIndex, Path],
                                        embedder: SentenceEmbedder) -> None:
    bot, index, path = trained
    stamp = (path / "manifest.json").stat().st_mtime_ns
    assert not needs_training(adapter_job(bot), index, embedder, max_steps=STEPS)
    assert train_adapter(bot, index, embedder, progress=False, max_steps=STEPS) == path
    assert (path / "manifest.json").stat().st_mtime_ns == stamp
    assert needs_training(adapter_job(bot), index, embedder, max_steps=STEPS + 1)  # config changed
    with (bot.root / "faq.yaml").open("a") as faq:
        faq.write("- question: Do you have a branch?\n  answer: No, we are app-only.\n")
    changed, _ = build_index(bot, embedder)
    assert needs_training(adapter_job(bot), changed, embedder, max_steps=STEPS)
    (bot.root / "faq.yaml").write_text(textwrap.dedent(FAQ_YAML))
    build_index(bot, embedder)


def test_interrupted_training_resumes_to_the_same_adapter(
        trained: tuple[BotDefinition, FaqIndex, Path], embedder: SentenceEmbedder,
        tmp_path: Path) -> None:
    _bot, _index, reference = trained
    bot = make_bot(tmp_path / "tiny")
    index, _ = build_index(bot, embedder)

    class Stop(Exception):
        pass

    def stop_after_two(step: int, loss: float) -> None:
        if step == 2:
            raise Stop

    with pytest.raises(Stop):
        train_adapter(bot, index, embedder, progress=False, max_steps=STEPS,
                      on_step=stop_after_two)
    assert (bot.adapter_checkpoints / "state.pt").is_file()
    assert not bot.adapter_dir.exists()
    steps: list[int] = []
    train_adapter(bot, index, embedder, progress=False, max_steps=STEPS,
                  on_step=lambda step, loss: steps.append(step))
    assert steps == [3]  # resumed after the checkpoint at step 2
    mine, theirs = _weights(bot.adapter_dir), _weights(reference)
    assert mine.keys() == theirs.keys()
    for key in mine:
        assert torch.allclose(mine[key], theirs[key], atol=1e-6), key


def test_trained_adapter_serves_and_other_base_is_refused(
        trained: tuple[BotDefinition, FaqIndex, Path], tmp_path: Path) -> None:
    bot, index, path = trained
    model = DialogueModel(bot.config.model).load()
    model.add_adapter(bot.config.name, bot.adapter_dir)
    name = bot.config.name
    passage = index.get("reset-pin")
    assert passage is not None
    answer = model.generate(GenerationRequest("how can I reset my pin", [passage],
                                              persona=bot.config.persona, adapter=name))
    assert 0 < answer.tokens <= 8 and answer.adapter == "tiny_bot"
    foreign = tmp_path / "foreign"
    shutil.copytree(path, foreign)
    manifest: dict[str, Any] = json.loads((foreign / "manifest.json").read_text())
    manifest["base"] = {"name": "other-model", "fingerprint": "sha256:0000"}
    (foreign / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="trained for base model 'other-model'"):
        model.add_adapter("foreign", foreign)
    assert "foreign" not in model.adapters


def test_the_estimate_is_redone_from_the_steps_measured() -> None:
    line = remeasured(left=90, elapsed=10.0, done=5, estimated=600.0)
    assert line == ("LoRA adapter: 2.0 s a step on this machine now: about 3 min more "
                    "(estimated 10 min in all before starting)")
