"""Evaluate grounded generation on held-out paraphrased FAQ questions.

``eval/faq_paraphrases.yaml`` in the bot folder lists ``{id: faq-id, questions: [...]}``.
Each question is answered the way the bot answers at run time (retrieve top-k, keep passages
above ``faq.answer_threshold`` and within ``model.passage_margin`` of the best, generate;
none left -> the "don't know" rule) and scored
against the gold FAQ answer: token F1, ROUGE-L F1, and whether the answer cites the right
passage. The "extractive" figures score returning the top passage verbatim, for reference.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.engines.answers import GenerationRequest
from adapters.engines.choice import LocalModel
from adapters.engines.prompting import lcs_length, words
from bot.build import bot_embedder, build_index
from bot.definition.config import BotDefinition
from bot.errors import ConfigError, library_errors
from retrieval.embedder import Embedder
from retrieval.index import relevant_hits
from retrieval.knowledge import KnowledgeBase
from retrieval.yamlio import load_yaml

PARAPHRASES = Path("eval") / "faq_paraphrases.yaml"


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (numbers like 5-7 or 1.5% kept in pieces)."""
    return words(text)


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style bag-of-tokens F1."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over word tokens."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def load_paraphrases(bot: BotDefinition) -> list[tuple[str, str]]:
    """``(faq_id, question)`` pairs from the bot's held-out paraphrase file."""
    path = bot.root / PARAPHRASES
    shown = str(PARAPHRASES)
    if not path.is_file():
        raise ConfigError(f"no held-out questions; write {shown} as a list of "
                          "{id: faq-id, questions: [...]}", file=str(bot.root))
    data = load_yaml(path, display=shown)
    if not isinstance(data, list):
        raise ConfigError("must be a list of {id, questions} entries", file=shown)
    pairs: list[tuple[str, str]] = []
    for n, entry in enumerate(data):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str)
                and isinstance(entry.get("questions"), list)):
            raise ConfigError("needs 'id' (a string) and 'questions' (a list)", file=shown,
                              path=f"[{n}]")
        pairs.extend((entry["id"], str(q)) for q in entry["questions"])
    return pairs


def _spread(items: list[tuple[str, str]], limit: int | None) -> list[tuple[str, str]]:
    """``limit`` items evenly spread over the list (all when no limit)."""
    if limit is None or limit >= len(items):
        return items
    return [items[i * len(items) // limit] for i in range(limit)]


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 4) if values else 0.0


def evaluate_generation(bot: BotDefinition, *, adapter: bool, model: LocalModel,
                        limit: int | None = None, embedder: Embedder | None = None,
                        progress: bool = False) -> dict[str, Any]:
    """Score base (``adapter=False``) or LoRA-tuned answers on the held-out questions.

    ``model`` is the engine to ask (``adapters.engines.choice.local_model``, closed by the caller);
    ``embedder`` may be passed in to share a loaded one between runs.
    """
    faq = bot.config.faq
    if faq is None:
        raise ConfigError("this bot has no 'faq' section", file=str(bot.file))
    embedder = embedder or bot_embedder(bot)
    index, _rebuilt = build_index(bot, embedder)
    knowledge = KnowledgeBase(index, embedder)
    questions = _spread(load_paraphrases(bot), limit)
    unknown = sorted({i for i, _ in questions if index.get(i) is None})
    if unknown:
        raise ConfigError(f"unknown FAQ ids: {', '.join(unknown[:5])}", file=str(PARAPHRASES))
    name = None
    if adapter:
        name = bot.config.name
        if name not in model.adapters:
            with library_errors():
                model.add_adapter(name, bot.adapter_dir)
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    from tqdm.auto import tqdm

    for faq_id, question in tqdm(questions, desc="generation eval", disable=not progress):
        hits = knowledge.search(question, faq.top_k)
        passages = [h.passage for h in relevant_hits(hits, threshold=faq.answer_threshold,
                                                     margin=bot.config.model.passage_margin)]
        answer = model.generate(GenerationRequest(question, passages,
                                                  persona=bot.config.persona, adapter=name))
        gold = index.get(faq_id)
        assert gold is not None
        top = hits[0].passage.text if hits else ""
        records.append({
            "id": faq_id, "question": question, "answer": answer.text,
            "cited": list(answer.cited_ids), "marked": list(answer.marked_ids),
            "declined": answer.declined,
            "f1": round(token_f1(answer.text, gold.text), 4),
            "rouge_l": round(rouge_l(answer.text, gold.text), 4),
            "cites_gold": faq_id in answer.cited_ids,
            "marks_gold": faq_id in answer.marked_ids,
            "gold_in_prompt": faq_id in {p.id for p in passages},
            "top1": bool(hits) and hits[0].passage.id == faq_id,
            "extractive_f1": token_f1(top, gold.text),
            "extractive_rouge_l": rouge_l(top, gold.text),
            "tokens": answer.tokens, "seconds": answer.seconds,
        })
    generated = [r for r in records if r["tokens"]]
    gen_seconds = sum(r["seconds"] for r in generated)
    return {
        "model": "lora" if adapter else "base",
        "base": bot.config.model.base,
        "questions": len(records),
        "answer_f1": _mean([r["f1"] for r in records]),
        "rouge_l": _mean([r["rouge_l"] for r in records]),
        "citation_accuracy": _mean([float(r["cites_gold"]) for r in records]),
        "marker_accuracy": _mean([float(r["marks_gold"]) for r in records]),
        "cites_any_passage": _mean([float(bool(r["cited"])) for r in records]),
        "declined": _mean([float(r["declined"]) for r in records]),
        "gold_in_prompt": _mean([float(r["gold_in_prompt"]) for r in records]),
        "retrieval_top1": _mean([float(r["top1"]) for r in records]),
        "extractive_f1": _mean([r["extractive_f1"] for r in records]),
        "extractive_rouge_l": _mean([r["extractive_rouge_l"] for r in records]),
        "tokens_per_second": round(sum(r["tokens"] for r in generated) / gen_seconds, 2)
        if gen_seconds else 0.0,
        "seconds": round(time.perf_counter() - started, 1),
        "items": records,
    }


SUMMARY_KEYS = ("questions", "answer_f1", "rouge_l", "citation_accuracy", "marker_accuracy",
                "cites_any_passage",
                "declined", "gold_in_prompt", "extractive_f1", "extractive_rouge_l",
                "tokens_per_second", "seconds")


def format_report(results: Sequence[dict[str, Any]]) -> str:
    """A small text table of :func:`evaluate_generation` results side by side."""
    header = f"{'metric':<20}" + "".join(f"{r['model']:>12}" for r in results)
    lines = [header]
    for key in SUMMARY_KEYS:
        lines.append(f"{key:<20}" + "".join(f"{r[key]:>12}" for r in results))
    return "\n".join(lines)
