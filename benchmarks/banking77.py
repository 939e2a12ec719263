"""Intent classification on Banking77: 10-shot and full data, calibration, out-of-scope, latency.

Run: .venv/bin/python benchmarks/banking77.py   (writes benchmarks/results/banking77.json)
Data: ../shared/data/banking77/train.csv (10,003 rows, 77 intents; Casanueva et al. 2020).
Split: stratified 80/20 of that file (seed 0); the 20 % is never trained on. Embeddings of all
texts are computed once per run and shared by every configuration, except the tuned-encoder
rows (``classifier.encoder_steps``), which tune a copy of MiniLM per sample and re-embed.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bot/cli.py: before torch loads

import numpy as np
import torch
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

from adapters.classifiers.intents import (
    OUT_OF_SCOPE,
    IntentClassifier,
    background_examples,
    tuned_encoder,
)
from bot.definition.config import ClassifierSettings
from retrieval.embedder import SentenceEmbedder

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
RESULTS = ROOT / "benchmarks" / "results" / "banking77.json"
DEFAULT = ClassifierSettings()
EMBEDDINGS_ONLY = replace(DEFAULT, lexical_weight=0.0)
TUNED_VARIANTS = {  # --tuned-variants key: (config name suffix, settings, intent names?)
    "lexical": (" + lexical", DEFAULT, False),
    "embeddings": (", embeddings only", EMBEDDINGS_ONLY, False),
    "names": (" + lexical + intent names as descriptions", DEFAULT, True),
}


def load(path: Path) -> tuple[list[str], list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of top-class confidences."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def run_config(name: str, train: np.ndarray, test: np.ndarray, texts: list[str],
               labels: np.ndarray, vectors: np.ndarray, embedder: SentenceEmbedder,
               settings: ClassifierSettings, background: list[str], bg_vectors: np.ndarray,
               extra: tuple[list[str], list[str], np.ndarray] | None = None,
               seed: int = 0) -> tuple[dict[str, Any], IntentClassifier]:
    """Train on ``train`` rows (+ ``extra`` description rows), score on ``test`` rows."""
    fit_texts, fit_labels = training_rows(train, texts, labels, extra)
    fit_vectors = vectors[train] if extra is None else np.vstack([vectors[train], extra[2]])
    started = time.perf_counter()
    model = IntentClassifier.fit(fit_texts, fit_labels, fit_vectors, embedder, settings=settings,
                                 background=background, background_vectors=bg_vectors, seed=seed)
    seconds = time.perf_counter() - started
    test_texts = [texts[i] for i in test]
    features = _features(model, vectors[test], test_texts)
    probabilities = model.head.probabilities(features)
    predictions = model.predict_vectors(vectors[test], test_texts)
    top = np.array([p.ranking[0][0] for p in predictions])
    confidence = np.array([p.confidence for p in predictions])
    gold = labels[test]
    correct = top == gold
    accepted = np.array([not p.out_of_scope for p in predictions])
    raw = replace(model.head, temperature=1.0).probabilities(features)
    raw_conf = np.array([row[[model.head.classes.index(c) for c in model.intents]].max()
                         for row in raw])
    result = {
        "config": name, "train_examples": len(fit_texts), "seconds_to_train": round(seconds, 1),
        "accuracy_top1": round(float(correct.mean()), 4),
        "macro_f1_top1": round(float(f1_score(gold, top, average="macro")), 4),
        "predicted_out_of_scope_class": round(float(np.mean(
            [model.head.classes[int(np.argmax(r))] == OUT_OF_SCOPE for r in probabilities])), 4),
        "temperature": round(model.head.temperature, 3),
        "ece_calibrated": round(ece(confidence, correct), 4),
        "ece_uncalibrated": round(ece(raw_conf, correct), 4),
        "accepted_at_threshold": round(float(accepted.mean()), 4),
        "accuracy_when_accepted": round(float(correct[accepted].mean()), 4)
        if accepted.any() else None,
        "features": int(model.head.coef.shape[1]),
    }
    print(json.dumps(result), flush=True)
    return result, model


def training_rows(train: np.ndarray, texts: list[str], labels: np.ndarray,
                  extra: tuple[list[str], list[str], Any] | tuple[list[str], list[str]] | None,
                  ) -> tuple[list[str], list[str]]:
    """Texts and labels of the ``train`` rows, then of the ``extra`` description rows."""
    fit_texts = [texts[i] for i in train] + (list(extra[0]) if extra else [])
    fit_labels = [str(labels[i]) for i in train] + (list(extra[1]) if extra else [])
    return fit_texts, fit_labels


def _features(model: IntentClassifier, vectors: np.ndarray, texts: list[str]) -> Any:
    from adapters.classifiers.heads import features_of

    return features_of(vectors, texts, model.lexical)


def few_shot(train: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(train[labels[train] == c], k, replace=False)
                           for c in sorted(set(labels))])


def latency(model: IntentClassifier, texts: list[str], threads: int) -> dict[str, float]:
    """Per-message predict() time (embedding included, never from the embedder's cache)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for text in texts[:10]:
            model.predict(f"warm-up: {text}")
        assert isinstance(model.embedder, SentenceEmbedder)
        model.embedder.clear_cache()
        times = []
        head_times = []
        for text in texts:
            started = time.perf_counter()
            vector = model.embedder.embed([text])
            middle = time.perf_counter()
            model.predict_vectors(vector, [text])
            times.append(time.perf_counter() - started)
            head_times.append(time.perf_counter() - middle)
    finally:
        torch.set_num_threads(previous)
    ms = np.array(times) * 1000
    return {"threads": threads, "messages": len(texts), "p50_ms": round(float(np.median(ms)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "classifier_only_p50_ms": round(float(np.median(head_times) * 1000), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="10-shot samples to average")
    parser.add_argument("--quick", action="store_true", help="skip full-data variants")
    parser.add_argument("--encoder-steps", type=int, default=120,
                        help="classifier.encoder_steps of the tuned-encoder rows (0: none)")
    parser.add_argument("--tuned-seeds", type=int, default=None,
                        help="10-shot samples with a tuned encoder (default: --seeds)")
    parser.add_argument("--tuned-variants", default=",".join(TUNED_VARIANTS),
                        help="which tuned-encoder rows to run (comma-separated)")
    parser.add_argument("--tuned-only", action="store_true",
                        help="add only the tuned-encoder rows missing from the last "
                             "results file")
    args = parser.parse_args()

    texts, label_list = load(DATA)
    labels = np.array(label_list)
    index = np.arange(len(texts))
    train, test = train_test_split(index, test_size=0.2, stratify=labels, random_state=0)
    embedder = SentenceEmbedder("all-MiniLM-L6-v2").load()
    background = background_examples()
    started = time.perf_counter()
    all_vectors = embedder.embed(texts + background)
    embed_seconds = time.perf_counter() - started
    vectors, bg_vectors = all_vectors[: len(texts)], all_vectors[len(texts):]
    names = sorted(set(label_list))
    name_texts = [n.replace("_", " ") for n in names]
    name_vectors = embedder.embed(name_texts)
    common = {"texts": texts, "labels": labels, "vectors": vectors, "embedder": embedder,
              "background": background, "bg_vectors": bg_vectors}
    results: dict[str, Any] = {
        "dataset": "banking77 train.csv, stratified 80/20 split, seed 0",
        "train_rows": len(train), "test_rows": len(test), "intents": len(names),
        "embedding_model": "all-MiniLM-L6-v2", "embed_seconds_all_texts": round(embed_seconds, 1),
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{torch.get_num_threads()} torch threads",
        "settings": {"logistic_c": DEFAULT.logistic_c, "lexical_weight": DEFAULT.lexical_weight,
                     "confidence_threshold": DEFAULT.confidence_threshold},
        "runs": [],
    }

    variants: list[tuple[str, ClassifierSettings, bool]] = [
        ("embeddings + lexical (default)", DEFAULT, False),
        ("embeddings only", EMBEDDINGS_ONLY, False),
        ("embeddings + lexical + intent names as descriptions", DEFAULT, True),
    ]
    names_extra = (name_texts, names, name_vectors)
    if args.tuned_only:  # keep the rows of the last run; add the tuned ones it lacks
        results = json.loads(RESULTS.read_text())
    done = {(r["config"], r.get("seed")) for r in results["runs"]}
    for seed in range(0 if args.tuned_only else args.seeds):
        subset = few_shot(train, labels, 10, seed)
        for name, settings, with_names in variants:
            result, _ = run_config(f"10-shot, {name}", subset, test, settings=settings,
                                   extra=names_extra if with_names else None, seed=seed,
                                   **common)
            results["runs"].append(dict(result, seed=seed))
    steps = args.encoder_steps
    tuned_variants = [(f"{steps} encoder steps{suffix}", settings, with_names)
                      for key, (suffix, settings, with_names) in TUNED_VARIANTS.items()
                      if steps and key in args.tuned_variants.split(",")]
    for seed in range(args.seeds if args.tuned_seeds is None else args.tuned_seeds):
        subset = few_shot(train, labels, 10, seed)
        for with_names in (False, True):
            chosen = [(n, s) for n, s, w in tuned_variants
                      if w == with_names and (f"10-shot, {n}", seed) not in done]
            if chosen:
                results["runs"] += [dict(r, seed=seed) for r in tuned_runs(
                    subset, test, steps, seed, chosen,
                    names_extra[:2] if with_names else None, **common)]
    results["ten_shot_summary"] = summarise(results["runs"])
    if args.tuned_only:
        RESULTS.write_text(json.dumps(results, indent=2))
        print(f"updated the tuned-encoder rows of {RESULTS}")
        return

    model = None
    if not args.quick:
        for name, settings, _ in variants[:2]:
            result, trained = run_config(f"full data, {name}", train, test, settings=settings,
                                         **common)
            results["runs"].append(result)
            model = model or trained
        results["out_of_scope_held_out_intents"] = held_out_intents(train, test, **common)
    if model is None:
        model = run_config("latency model", train[:2000], test, settings=DEFAULT, **common)[1]
    probe = [texts[i] for i in test[:300]]
    results["latency"] = [latency(model, probe, 1), latency(model, probe, 2)]
    print(json.dumps(results["latency"]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS}")


def tuned_runs(train: np.ndarray, test: np.ndarray, steps: int, seed: int,
               variants: list[tuple[str, ClassifierSettings]],
               extra: tuple[list[str], list[str]] | None, *, texts: list[str],
               labels: np.ndarray, vectors: np.ndarray, embedder: SentenceEmbedder,
               background: list[str], bg_vectors: np.ndarray) -> list[dict[str, Any]]:
    """Tune a copy of the encoder on the ``train`` rows (and ``extra`` description rows, as
    `bot train` does), re-embed with it, and fit each variant."""
    fit_texts, fit_labels = training_rows(train, texts, labels, extra)
    started = time.perf_counter()
    tuned = tuned_encoder(embedder, fit_texts, fit_labels, steps=steps, seed=seed)
    tuning_seconds = time.perf_counter() - started
    rows = np.concatenate([train, test])
    tuned_vectors = np.zeros_like(vectors)
    fresh = tuned.embed([texts[i] for i in rows] + background)
    tuned_vectors[rows] = fresh[: len(rows)]
    tuned_extra = (extra[0], extra[1], tuned.embed(extra[0])) if extra else None
    common = {"texts": texts, "labels": labels, "vectors": tuned_vectors, "embedder": tuned,
              "background": background, "bg_vectors": fresh[len(rows):]}
    results = []
    for name, settings in variants:
        result, _ = run_config(f"10-shot, {name}", train, test, settings=settings,
                               extra=tuned_extra, seed=seed, **common)
        results.append(dict(result, seconds_to_tune_encoder=round(tuning_seconds, 1)))
    return results


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation of accuracy per 10-shot configuration."""
    by_config: dict[str, list[float]] = {}
    for run in runs:
        if run["config"].startswith("10-shot"):
            by_config.setdefault(run["config"], []).append(run["accuracy_top1"])
    return {name: {"mean": round(float(np.mean(accs)), 4), "std": round(float(np.std(accs)), 4),
                   "seeds": len(accs)} for name, accs in by_config.items()}


def held_out_intents(train: np.ndarray, test: np.ndarray, *, texts: list[str],
                     labels: np.ndarray, vectors: np.ndarray, embedder: SentenceEmbedder,
                     background: list[str], bg_vectors: np.ndarray) -> dict[str, Any]:
    """Train without 10 intents; their test messages must come out as out of scope."""
    names = sorted(set(labels))
    rng = np.random.default_rng(0)
    unseen = set(rng.choice(names, 10, replace=False))
    keep = train[~np.isin(labels[train], list(unseen))]
    model = IntentClassifier.fit([texts[i] for i in keep], [str(labels[i]) for i in keep],
                                 vectors[keep], embedder, settings=DEFAULT,
                                 background=background, background_vectors=bg_vectors)
    test_texts = [texts[i] for i in test]
    predictions = model.predict_vectors(vectors[test], test_texts)
    is_oos = np.isin(labels[test], list(unseen))
    confidence = np.array([p.confidence for p in predictions])
    result: dict[str, Any] = {"unseen_intents": sorted(unseen), "test_messages": len(test),
                              "unseen_messages": int(is_oos.sum()),
                              "auroc_low_confidence_is_oos": round(float(
                                  roc_auc_score(is_oos, -confidence)), 4), "thresholds": []}
    seen_right = np.array([p.ranking[0][0] == g for p, g in
                           zip(predictions, labels[test], strict=True)])
    for threshold in (0.3, 0.5, 0.7):
        model.settings = replace(DEFAULT, confidence_threshold=threshold)
        flagged = np.array([p.out_of_scope for p in model.predict_vectors(vectors[test],
                                                                         test_texts)])
        result["thresholds"].append({
            "threshold": threshold,
            "oos_precision": round(float((flagged & is_oos).sum() / max(1, flagged.sum())), 4),
            "oos_recall": round(float((flagged & is_oos).sum() / max(1, is_oos.sum())), 4),
            "in_scope_accepted_and_right": round(float(
                (~flagged & ~is_oos & seen_right).sum() / max(1, (~is_oos).sum())), 4)})
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
