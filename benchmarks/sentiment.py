"""Sentiment: the packaged head (trained on our own messages) scored on airline tweets.

Run: .venv/bin/python benchmarks/sentiment.py   (writes benchmarks/results/sentiment.json)
Data: ../shared/data/airline_sentiment/Tweets.csv (14,640 tweets, labels negative / neutral /
positive). Evaluation only: nothing from it is trained on or shipped.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold

from adapters.classifiers.heads import LinearHead
from adapters.classifiers.sentiment import (
    LABELS,
    LOGISTIC_C,
    SentimentClassifier,
    clean,
    read_training_data,
)
from retrieval.embedder import SentenceEmbedder

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "airline_sentiment" / "Tweets.csv"
RESULTS = ROOT / "benchmarks" / "results" / "sentiment.json"


def scores(gold: list[str], predicted: list[str]) -> dict[str, Any]:
    report = classification_report(gold, predicted, labels=list(LABELS), output_dict=True,
                                   zero_division=0)
    return {
        "messages": len(gold),
        "macro_f1": round(float(f1_score(gold, predicted, labels=list(LABELS),
                                         average="macro")), 4),
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "per_class": {label: {k: round(float(report[label][k]), 4)
                              for k in ("precision", "recall", "f1-score", "support")}
                      for label in LABELS},
        "confusion_rows_gold_cols_predicted": confusion_matrix(
            gold, predicted, labels=list(LABELS)).tolist(),
    }


def main() -> None:
    with DATA.open(encoding="utf-8", newline="") as handle:
        rows = [(r["text"], r["airline_sentiment"]) for r in csv.DictReader(handle)]
    rows = [(text, label) for text, label in rows if label in LABELS]
    embedder = SentenceEmbedder("all-MiniLM-L6-v2").load()

    started = time.perf_counter()
    model = SentimentClassifier.train(embedder)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embedder.embed([clean(text) for text, _ in rows])
    embed_seconds = time.perf_counter() - started
    gold = [label for _, label in rows]
    predicted = [p.label for p in model.predict_vectors(vectors)]
    majority = max(LABELS, key=gold.count)

    own = read_training_data()
    own_vectors = embedder.embed([clean(text) for text, _ in own])
    own_labels = np.array([label for _, label in own])
    cv_predicted = np.empty(len(own), dtype=object)
    for train, held in StratifiedKFold(5, shuffle=True, random_state=0).split(own_vectors,
                                                                               own_labels):
        head = LinearHead.fit(own_vectors[train], list(own_labels[train]), c=LOGISTIC_C)
        cv_predicted[held] = np.array(head.classes)[head.probabilities(
            own_vectors[held]).argmax(axis=1)]

    results = {
        "model": "logistic regression on all-MiniLM-L6-v2 embeddings, temperature-calibrated",
        "training_data": f"adapters/classifiers/data/sentiment_train.csv ({len(own)} messages)",
        "train_seconds": round(train_seconds, 1), "temperature": model.head.temperature,
        "airline_tweets": scores(gold, predicted),
        "airline_majority_class_baseline": scores(gold, [majority] * len(gold)),
        "own_data_5fold_cv": scores(list(own_labels), [str(p) for p in cv_predicted]),
        "embed_seconds_airline": round(embed_seconds, 1),
    }
    print(json.dumps({k: v for k, v in results.items() if k != "own_data_5fold_cv"}, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
