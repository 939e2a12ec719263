"""A real public help center's Markdown, loaded as a new user would: no hand edits.

Run: git clone https://github.com/bitwarden/help /tmp/bitwarden-help
     .venv/bin/python -m benchmarks.help_center /tmp/bitwarden-help
     (writes benchmarks/results/help_center.json)

The articles (``_articles/``, Jekyll Markdown with front matter, Liquid tags, kramdown
attributes and raw HTML) are copied as they are into the ``faq/`` folder of a bot whose only
source is that folder (generation off, every other setting the default), read as `bot
validate` reads them, trained as `bot train` trains them, and asked the questions of
``data/help_center_questions.yaml``. Scored by ``bot eval --answers``'s rules: right when
the reply cites a passage of an article the question names, wrong when it cites another or
answers a question marked ``none``, abstained otherwise (a clarifying question included).
``replies_with_markup`` counts replies that show any of ``MARKUP`` (front matter, template
tags, bold marks, raw HTML, kramdown attributes, ``Q:``/``A:`` labels, links to the site's
own pages): the target is 0. The help center is read from the path given (it is not the
project's to ship).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.answers import _keys, trained
from bot.definition.loader import load_bot
from bot.evaluation.answers import NONE, AnswerCase, ask_all, outcome
from retrieval.knowledge import read_sources

QUESTIONS = Path(__file__).parent / "data" / "help_center_questions.yaml"
RESULTS = Path(__file__).parent / "results" / "help_center.json"
BOT = ("name: help_center\ndescription: Answers questions from a help center's articles.\n"
       "faq:\n  sources: [faq/]\nmodel:\n  generation: false\nchannels:\n  rest:\n"
       "    auth: none\n")
MARKUP = re.compile(r"^---|layout:|\{%|\{\{|\{:|\*\*|</?[a-z][a-z0-9]*[\s>/]|^\s*[QA]:|\]\(/"
                    r"|\\[_*]", re.IGNORECASE | re.MULTILINE)


def cases_for(questions: list[dict[str, Any]], sources: dict[str, str]) -> list[AnswerCase]:
    """Each question as an answer case: its articles resolved to their passages' ids."""
    cases = []
    for n, item in enumerate(questions):
        expect = item["expect"]
        ids = (NONE,) if expect == [NONE] else tuple(sorted(
            pid for pid, source in sources.items() if any(source.endswith(f) for f in expect)))
        cases.append(AnswerCase(str(n), (item["q"],), (ids or ("-",),),
                                "not covered" if ids == (NONE,) else "covered"))
    return cases


def measure(checkout: Path) -> dict[str, Any]:
    listed = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    articles = checkout / "_articles"
    if not articles.is_dir():
        raise SystemExit(f"help_center benchmark: {articles} is not a folder; clone "
                         f"{listed['source'].split(' ')[0]} and give its path")
    commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "help_center"
        shutil.copytree(articles, folder / "faq")
        (folder / "bot.yaml").write_text(BOT, encoding="utf-8")
        bot = load_bot(folder)
        assert bot.config.faq is not None
        passages, documents = read_sources(bot.faq_sources(), bot.config.faq)
        warnings = [w for d in documents for w in d.warnings]
        started = time.perf_counter()
        said: dict[str, str] = {}
        runtime = trained(folder, said)
        train_s = time.perf_counter() - started
        sources = {p.id: p.source for p in passages}
        cases = cases_for(listed["questions"], sources)
        replies = asyncio.run(ask_all(runtime, cases))
        asyncio.run(runtime.close())
    results = [outcome(case, reply) for case, reply in zip(cases, replies, strict=True)]
    counts = {k: results.count(k) for k in ("right", "partial", "wrong", "clarified",
                                           "abstained")}
    shares = {k: round(v / len(cases), 4) for k, v in counts.items()}
    marked = [r.text for r in replies if MARKUP.search(r.text)]
    return {
        "articles": sum(1 for _ in articles.rglob("*.md")), "passages": len(passages),
        "hand_edits": 0, "train_s": round(train_s, 1),
        "answers": _keys({**shares, "n": len(cases)}), "replies_with_markup": len(marked),
        "setup": {"source": listed["source"], "commit": commit, "counts": counts,
                  "validate_warnings": len(warnings), "bot_train": said,
                  "load_average": [load_before, [round(x, 2) for x in os.getloadavg()]]},
        "questions": [{"q": c.turns[0], "outcome": o, "kind": r.kind,
                       "cited": sorted(x.passage_id for x in r.citations),
                       "text": r.text[:300]}
                      for c, o, r in zip(cases, results, replies, strict=True)],
        "markup_seen": marked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a clone of github.com/bitwarden/help")
    figures = measure(parser.parse_args().checkout)
    RESULTS.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    print(json.dumps({k: v for k, v in figures.items() if k not in ("questions",
                                                                     "markup_seen")}, indent=2))


if __name__ == "__main__":
    main()
