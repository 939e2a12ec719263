"""`bot eval --answers FILE`: answered right, answered wrong, clarified, abstained.

``FILE`` lists questions the bot has not seen, each with what would answer it (YAML)::

    - turns: ["how long does a transfer abroad take?", "and what does it cost?"]
      expect: [international-transfer-fee]   # per part asked: a passage id, intent:NAME
      also: [international-transfer]         # or none; other entries that are right too
    - questions: ["i only have the virtual one, how do i get a real card"]
      id: order-new-card                     # the held-out paraphrase format

Each item is a new user; only the last turn's reply is scored. It is **right** when it
answers with the expected entries (its citations, or the intent that answered), **partial**
when it answers some of the parts and nothing else, **wrong** when it answers with anything
else or answers where every expected part is ``none``, **clarified** when it asks which of
two was meant, and **abstained** when it says it does not know. Also written: per-entry
errors and a risk-coverage curve (wrong share against answered share as the decision
threshold moves) as ``answers.json`` and ``risk_coverage.png``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.evaluation.conversations import abstained
from bot.insights.svg import risk_coverage_chart
from bot.runtime import BotRuntime
from bot.server.pipeline import TurnPipeline
from foundation.messages import BotReply, UserMessage
from retrieval.yamlio import load_yaml

NONE = "none"
OUTCOMES = ("right", "partial", "wrong", "clarified", "abstained")


@dataclass(frozen=True)
class AnswerCase:
    """Turns a new user sends; for the last, the acceptable answer of each part asked
    (``expect[i]``: the entries that answer part i, or ``("none",)``)."""

    id: str
    turns: tuple[str, ...]
    expect: tuple[tuple[str, ...], ...]
    note: str = ""


def load_answer_cases(path: Path) -> list[AnswerCase]:
    """The questions in ``path``: items with ``turns`` + ``expect``, or held-out paraphrase
    items with ``id`` + ``questions``."""
    raw = load_yaml(path, display=str(path))
    if not isinstance(raw, list):
        raise ConfigError("expected a list of questions", file=str(path))
    cases: list[AnswerCase] = []
    for n, item in enumerate(raw):
        where = f"[{n}]"
        if not isinstance(item, dict):
            raise ConfigError("each item must be a mapping", file=str(path), path=where)
        if "questions" in item:
            cases += [AnswerCase(f"{item['id']}-{i}", (str(q),), ((str(item["id"]),),),
                                 "paraphrase") for i, q in enumerate(item["questions"])]
            continue
        turns, expect = item.get("turns"), item.get("expect")
        if not turns or not isinstance(turns, list) or not isinstance(expect, list) \
                or not expect:
            raise ConfigError("needs 'turns' (a list of messages) and 'expect' (a list of "
                              "entries, intent:NAME or none)", file=str(path), path=where)
        also = tuple(str(a) for a in item.get("also") or ())
        parts = tuple((str(e), *also) if str(e) != NONE else (NONE,) for e in expect)
        cases.append(AnswerCase(str(item.get("id", n)), tuple(str(t) for t in turns), parts,
                                str(item.get("note", ""))))
    return cases


def answered_with(reply: BotReply, links: Mapping[str, str] | None = None) -> list[set[str]]:
    """What a reply answered with, one set per answer given: each cited passage, or the
    intent that answered together with its citation (and its ``faq:`` link in ``links``)."""
    cited = {c.passage_id for c in reply.citations}
    if reply.kind == "intent" and reply.intent:
        link = (links or {}).get(reply.intent)
        return [{f"intent:{reply.intent}", *cited, *([link] if link else [])}]
    return [{c} for c in sorted(cited)]


def outcome(case: AnswerCase, reply: BotReply, links: Mapping[str, str] | None = None) -> str:
    """One of :data:`OUTCOMES` for the reply to the case's last turn."""
    if reply.kind == "clarify":
        return "clarified"
    given = answered_with(reply, links)
    if abstained(reply) or not given:
        return "abstained"
    acceptable = {e for part in case.expect for e in part if e != NONE}
    if any(not (answer & acceptable) for answer in given):
        return "wrong"
    answerable = [set(part) for part in case.expect if NONE not in part]
    covered = [part for part in answerable if any(answer & part for answer in given)]
    return "right" if len(covered) == len(answerable) else "partial"


def best_was_right(case: AnswerCase, reply: BotReply,
                   links: Mapping[str, str] | None = None) -> bool:
    """Whether the decision's most likely candidate answers a part of the case, answered or
    not: what a perfect decision could have answered right with this ranking."""
    candidates = (reply.decision or {}).get("candidates") or []
    if not candidates:
        return False
    best = candidates[0]
    names = {best["target"]} if best["kind"] == "faq" else \
        {f"intent:{best['target']}", *([links[best["target"]]] if links and
                                        best["target"] in links else [])}
    return any(names & set(part) for part in case.expect if NONE not in part)


async def ask_all(runtime: BotRuntime, cases: Sequence[AnswerCase]) -> list[BotReply]:
    """The reply to each case's last turn, each case a new user."""
    pipeline = TurnPipeline(runtime)
    replies: list[BotReply] = []
    stamp = time.time_ns()
    for n, case in enumerate(cases):
        reply: BotReply | None = None
        for text in case.turns:
            reply = await pipeline.handle(UserMessage(sender=f"answers-{stamp}-{n}", text=text,
                                                      channel="rest"))
        assert reply is not None
        replies.append(reply)
    return replies


def summarise(cases: Sequence[AnswerCase], replies: Sequence[BotReply],
              links: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Shares of each outcome, per note kind, the errors by expected entry, and the
    risk-coverage points (from the replies' decision probabilities)."""
    results = [outcome(c, r, links) for c, r in zip(cases, replies, strict=True)]
    n = len(results)
    counts = Counter(results)
    summary: dict[str, Any] = {k: round(counts[k] / n, 4) if n else 0.0 for k in OUTCOMES}
    summary["n"] = n
    best = sum(best_was_right(c, r, links) for c, r in zip(cases, replies, strict=True))
    decided = any(r.decision for r in replies)  # none with answers.policy: threshold
    summary["best_candidate_right"] = round(best / n, 4) if n and decided else None
    by_note: dict[str, Counter[str]] = {}
    for case, result in zip(cases, results, strict=True):
        by_note.setdefault(case.note or "-", Counter())[result] += 1
    summary["by_note"] = {k: dict(v) for k, v in sorted(by_note.items())}
    summary["errors"] = [
        {"id": c.id, "question": c.turns[-1], "expect": [list(p) for p in c.expect],
         "got": [sorted(a) for a in answered_with(r, links)], "kind": r.kind, "outcome": o}
        for c, r, o in zip(cases, replies, results, strict=True) if o in ("wrong", "partial")]
    summary["risk_coverage"] = risk_coverage(results, replies)
    summary["threshold"] = next((r.decision["threshold"] for r in replies if r.decision
                                 and isinstance(r.decision.get("threshold"), int | float)),
                                None)  # the answer decision's; None: the FAQ's own bar
    return summary


def risk_coverage(results: Sequence[str], replies: Sequence[BotReply]) -> list[list[float]]:
    """(answered share, wrong share of all) as the bar for answering rises through the
    answered replies' confidences: the curve a team picks ``answers.max_wrong_rate`` on."""
    answered = sorted(((r.confidence or 0.0, o) for o, r in zip(results, replies, strict=True)
                       if o in ("right", "partial", "wrong")), key=lambda x: -x[0])
    n = len(results) or 1
    points, wrong = [[0.0, 0.0]], 0
    for i, (_confidence, result) in enumerate(answered, start=1):
        wrong += result == "wrong"
        points.append([round(i / n, 4), round(wrong / n, 4)])
    return points


def score_cases(runtime: BotRuntime, cases: Sequence[AnswerCase]) -> dict[str, Any]:
    """Ask every case and summarise (runs its own event loop)."""
    replies = asyncio.run(ask_all(runtime, cases))
    links = {i.name: i.faq for i in runtime.bot.config.intents if i.faq}
    return summarise(cases, replies, links)


def plot_risk_coverage(points: Sequence[Sequence[float]], path: Path, *, title: str,
                       threshold: float | None = None) -> list[Path]:
    """The risk-coverage curve as ``path`` (PNG) and beside it as SVG, titled, with the
    bot's own operating point (its last point: every answer it gives at its threshold)
    marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.5))
    axes.plot([p[0] for p in points], [p[1] for p in points], marker=".",
              label="answering only above a rising bar")
    x, y = points[-1]
    label = "this bot" + (f" (threshold {threshold:g})" if threshold is not None else "")
    axes.plot([x], [y], marker="o", markersize=11, fillstyle="none", color="tab:red",
              linestyle="none", label=f"{label}: answers {x:.0%}, wrong {y:.1%}")
    axes.set_title(title)
    axes.set_xlabel("answered (share of questions)")
    axes.set_ylabel("answered wrongly (share of questions)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, max(0.1, max(p[1] for p in points) * 1.15))
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    svg = path.with_suffix(".svg")
    svg.write_text(risk_coverage_chart(points, title=title, threshold=threshold),
                   encoding="utf-8")
    return [path, svg]


def format_summary(summary: dict[str, Any], *, title: str) -> str:
    """The summary as a support team reads it: outcomes, by kind of question, errors."""
    n = summary["n"]
    lines = [title, ""]
    lines += [f"  {name:<10} {summary[name]:6.1%}  ({round(summary[name] * n)} of {n})"
              for name in OUTCOMES]
    if summary["best_candidate_right"] is not None:
        lines.append(f"  the best candidate was right for {summary['best_candidate_right']:.1%}"
                     ": the most a better decision could answer right without better ranking")
    lines += ["", "  by kind of question:"]
    for note, counts in summary["by_note"].items():
        lines.append(f"    {note:<12} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if summary["errors"]:
        lines += ["", "  answered wrongly or in part:"]
        for error in summary["errors"]:
            expected = " + ".join("/".join(part) for part in error["expect"])
            got = " + ".join("/".join(answer) for answer in error["got"])
            lines.append(f"    [{error['outcome']}] {error['question']!r}: expected {expected}, "
                         f"got {got}")
    return "\n".join(lines)
