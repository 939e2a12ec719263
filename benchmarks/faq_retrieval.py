"""FAQ retrieval on StackFAQ: query -> thread recall@k, dense vs hybrid, with/without alternatives.

Run: .venv/bin/python benchmarks/faq_retrieval.py   (writes benchmarks/results/faq_retrieval.json)
Data: ../shared/data/stackfaq (125 threads, 1,375 paraphrased queries; Karan & Šnajder 2018).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np

from retrieval.documents import Passage
from retrieval.embedder import SentenceEmbedder
from retrieval.index import FaqIndex

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "stackfaq" / "stackExchange-FAQ.xml"
KS = (1, 3, 5)


def load_threads(path: Path) -> list[dict[str, object]]:
    threads: list[dict[str, object]] = []
    def texts(pair: ET.Element, tag: str) -> list[str]:
        return [html.unescape(" ".join((e.text or "").split())) for e in pair.iter(tag)]

    for i, pair in enumerate(ET.parse(path).getroot().iter("qapair")):
        rephrasings = [r for r in texts(pair, "rephr") if r and r != "*"]
        threads.append({"id": f"t{i}", "question": texts(pair, "question")[0],
                        "answer": " ".join(texts(pair, "answer")), "rephrasings": rephrasings})
    return threads


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class BM25:
    """Okapi BM25 over one document per passage (question + alternatives + answer)."""

    def __init__(self, docs: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(tokens(d)) for d in docs]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=np.float64)
        self.avg = float(self.lengths.mean())
        df = Counter(t for d in self.docs for t in d)
        n = len(docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(len(self.docs))
        for term in set(tokens(query)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i, doc in enumerate(self.docs):
                tf = doc.get(term, 0)
                if tf:
                    norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avg)
                    out[i] += idf * tf * (self.k1 + 1) / (tf + norm)
        return out


def recall(ranked: list[list[int]], gold: list[int]) -> dict[str, float]:
    return {f"recall@{k}": round(float(np.mean([g in r[:k] for r, g in zip(ranked, gold,
                                                                           strict=True)])), 4)
            for k in KS}


def evaluate(threads: list[dict[str, object]], embedder: SentenceEmbedder, n_alternatives: int,
             hybrid_weight: float) -> dict[str, object]:
    passages, queries, gold = [], [], []
    for i, t in enumerate(threads):
        reph = list(t["rephrasings"])  # type: ignore[call-overload]
        passages.append(Passage(id=str(t["id"]), text=str(t["answer"]), source="stackfaq",
                                question=str(t["question"]),
                                alternatives=tuple(reph[:n_alternatives])))
        for q in reph[n_alternatives:]:
            queries.append(q)
            gold.append(i)
    index = FaqIndex.build(passages, embedder)
    qvec = embedder.embed(queries)
    started = time.perf_counter()
    dense_ranked, dense_scores = [], []
    for v in qvec:
        hits = index.search_vector(v, len(passages))
        dense_ranked.append([int(h.passage.id[1:]) for h in hits])
        row = np.zeros(len(passages))
        for h in hits:
            row[int(h.passage.id[1:])] = h.score
        dense_scores.append(row)
    dense_ms = (time.perf_counter() - started) * 1000 / len(queries)
    bm25 = BM25([" ".join([p.question or "", *p.alternatives, p.text]) for p in passages])
    hybrid_ranked = []
    started = time.perf_counter()
    for q, dense in zip(queries, dense_scores, strict=True):
        lexical = bm25.scores(q)
        if lexical.max() > 0:
            lexical = lexical / lexical.max()
        combined = (1 - hybrid_weight) * dense + hybrid_weight * lexical
        hybrid_ranked.append(list(np.argsort(-combined)))
    hybrid_ms = (time.perf_counter() - started) * 1000 / len(queries) + dense_ms
    return {"queries": len(queries), "alternatives_per_entry": n_alternatives,
            "dense": recall(dense_ranked, gold), "dense_ms_per_query": round(dense_ms, 3),
            f"hybrid_bm25_w{hybrid_weight}": recall(hybrid_ranked, gold),
            "hybrid_ms_per_query": round(hybrid_ms, 3)}


def acme_bank(embedder: SentenceEmbedder) -> dict[str, object]:
    """Held-out paraphrases of acme_bank's FAQ, and how the answer threshold trades off."""
    import csv

    import yaml

    from bot.definition.loader import load_bot
    from retrieval.knowledge import load_passages

    bot_dir = ROOT / "example_bots" / "acme_bank"
    bot = load_bot(bot_dir)
    assert bot.config.faq is not None
    index = FaqIndex.build(load_passages(bot.faq_sources(), bot.config.faq), embedder)
    pairs = [(q, e["id"]) for e in yaml.safe_load((bot_dir / "eval" / "faq_paraphrases.yaml")
                                                  .read_text()) for q in e["questions"]]
    with (bot_dir / "eval" / "intents.csv").open() as f:
        off_topic = [r["text"] for r in csv.DictReader(f) if r["label"] == "out_of_scope"]
    top = [index.search_vector(v, 5) for v in embedder.embed([q for q, _ in pairs])]
    ranked = [[h.passage.id for h in hits] for hits in top]
    gold = [g for _, g in pairs]
    off_scores = [index.search_vector(v, 1)[0].score for v in embedder.embed(off_topic)]
    thresholds = {}
    for t in (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        answered_right = np.mean([h[0].score >= t and h[0].passage.id == g
                                  for h, g in zip(top, gold, strict=True)])
        answered_wrong = np.mean([h[0].score >= t and h[0].passage.id != g
                                  for h, g in zip(top, gold, strict=True)])
        thresholds[str(t)] = {"in_domain_answered_correctly": round(float(answered_right), 4),
                              "in_domain_answered_wrongly": round(float(answered_wrong), 4),
                              "out_of_scope_answered": round(float(np.mean(
                                  [s >= t for s in off_scores])), 4)}
    return {"queries": len(pairs), "passages": len(index), "out_of_scope_queries": len(off_topic),
            **{f"recall@{k}": round(float(np.mean([g in r[:k] for r, g in
                                                   zip(ranked, gold, strict=True)])), 4)
               for k in KS},
            "threshold_tradeoff": thresholds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "faq_retrieval.json"))
    parser.add_argument("--hybrid-weight", type=float, default=0.3)
    args = parser.parse_args()
    threads = load_threads(DATA)
    embedder = SentenceEmbedder("all-MiniLM-L6-v2").load()
    results = {"dataset": "StackFAQ", "threads": len(threads), "model": embedder.name,
               "runs": [evaluate(threads, embedder, n, args.hybrid_weight) for n in (0, 3)],
               "acme_bank": acme_bank(embedder)}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
