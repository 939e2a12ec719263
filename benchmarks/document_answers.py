"""The ``answers`` part of benchmarks/documents.py: a bot built only from real public documents.

Six manuals that Debian packages ship in /usr/share/doc (bzip2, ninja-build, time, bc: HTML;
fontconfig, shared-mime-info: PDF), copied as they are (a ``.pdf.gz`` unpacked) into the
``faq/`` folder of a bot whose only source is that folder, trained as `bot train` trains it
(generation off, every other setting the default), then asked the questions of
``benchmarks/data/documents_questions.yaml``, written from the documents' tables of contents
before any answer was read, some of them about what the documents do not cover. Each is
scored by ``bot eval --answers``'s rules (``bot/evaluation/answers.py``): right when the
reply cites a passage from a place the question names, wrong when it cites anything else
or answers a question marked ``none``, abstained when it says it does not know (a clarifying
question counts as abstained, as in benchmarks/answers.py).

The documents are read from the machine at run time (they are the packages' own files, not
the project's to ship): a missing one is an error naming the Debian package to install.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmarks.answers import _keys, trained
from bot.evaluation.answers import NONE, AnswerCase, ask_all, outcome, risk_coverage
from retrieval.passages import Passage

QUESTIONS = Path(__file__).parent / "data" / "documents_questions.yaml"
DOCS = Path("/usr/share/doc")
BOT = ("name: debian_manuals\ndescription: Answers questions about six command-line tools' "
       "manuals.\nfaq:\n  sources: [faq/]\nmodel:\n  generation: false\nchannels:\n  rest:\n"
       "    auth: none\n")


def copy_documents(faq: Path, documents: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Copy each listed document from /usr/share/doc into ``faq`` (unpacking a ``.gz``);
    returns what was copied (package, version, file, sha256)."""
    missing = [d for d in documents if not (DOCS / d["package"] / d["file"]).is_file()]
    if missing:
        raise SystemExit("documents benchmark: missing " + ", ".join(
            str(DOCS / d["package"] / d["file"]) for d in missing) + "; install the Debian "
            "packages (apt-get install " + " ".join(sorted({d["package"] for d in missing}))
            + ") on a system that keeps /usr/share/doc")
    copied = []
    for document in documents:
        source = DOCS / document["package"] / document["file"]
        data = source.read_bytes()
        if source.suffix == ".gz":
            data = gzip.decompress(data)
        (faq / document["name"]).write_bytes(data)
        copied.append({**document, "version": _version(document["package"]),
                       "sha256": hashlib.sha256(data).hexdigest()})
    return copied


def _version(package: str) -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or "unknown"


def places(expect: str, passages: Sequence[Passage]) -> set[str]:
    """The ids of the passages at a place the questions file names: ``FILE#HEADING`` (under
    that heading, at any depth) or ``FILE#pN`` / ``FILE#pN-M`` (a PDF's pages)."""
    name, _, where = expect.partition("#")
    pages = _pages(where)
    found = set()
    for passage in passages:
        source, _, page = passage.source.partition(", page ")
        if Path(source).name != name:
            continue
        here = int(page) in pages if pages is not None and page else \
            pages is None and where in passage.title.split(" > ")
        if here:
            found.add(passage.id)
    return found


def _pages(where: str) -> range | None:
    if not (where.startswith("p") and where[1:].replace("-", "").isdigit()):
        return None
    first, _, last = where[1:].partition("-")
    return range(int(first), int(last or first) + 1)


def cases_for(questions: Sequence[dict[str, Any]],
              passages: Sequence[Passage]) -> tuple[list[AnswerCase], list[str]]:
    """The questions as answer cases (each expected place resolved to its passages' ids),
    and the expected places that name no passage (reported, not fixed: the file is fixed)."""
    cases, unresolved = [], []
    for n, item in enumerate(questions):
        if item["expect"] == [NONE]:
            cases.append(AnswerCase(str(n), (item["q"],), ((NONE,),), "not covered"))
            continue
        ids: set[str] = set()
        for place in item["expect"]:
            found = places(place, passages)
            unresolved += [] if found else [place]
            ids |= found
        note = item["expect"][0].split("#")[0]
        cases.append(AnswerCase(str(n), (item["q"],), (tuple(sorted(ids)) or ("-",),), note))
    return cases, unresolved


def measure_answers() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``answers`` figures, and per question what the bot did."""
    listed = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "debian_manuals"
        (folder / "faq").mkdir(parents=True)
        copied = copy_documents(folder / "faq", listed["documents"])
        (folder / "bot.yaml").write_text(BOT, encoding="utf-8")
        said: dict[str, str] = {}
        runtime = trained(folder, said)
        assert runtime.knowledge is not None
        passages = runtime.knowledge.index.passages
        cases, unresolved = cases_for(listed["questions"], passages)
        replies = asyncio.run(ask_all(runtime, cases))
        first = [runtime.knowledge.search(c.turns[0], 1)[0].passage.id for c in cases]
        asyncio.run(runtime.close())
    results = [outcome(case, reply) for case, reply in zip(cases, replies, strict=True)]
    counts = {k: results.count(k) for k in ("right", "partial", "wrong", "clarified",
                                           "abstained")}
    shares = {k: round(v / len(cases), 4) for k, v in counts.items()}
    by_kind: dict[str, dict[str, int]] = {}
    for case, result in zip(cases, results, strict=True):
        kind = by_kind.setdefault(case.note, {})
        kind[result] = kind.get(result, 0) + 1
    covered = [(c, hit) for c, hit in zip(cases, first, strict=True) if c.expect != ((NONE,),)]
    return _keys({**shares, "n": len(cases)}), {
        "documents": copied, "passages": len(passages), "bot_train": said,
        "counts": counts, "by_document": by_kind, "unresolved_places": unresolved,
        "top_hit_right": round(sum(hit in c.expect[0] for c, hit in covered) / len(covered), 4),
        "top_hit_right_means": "covered questions whose first search hit is at an expected "
                               "place: what a perfect decision could answer right",
        "risk_coverage": risk_coverage(results, replies),
        "questions": [{"q": c.turns[0], "expect": list(c.expect[0]), "outcome": r,
                       "cited": sorted(x.passage_id for x in reply.citations),
                       "kind": reply.kind, "confidence": reply.confidence}
                      for c, r, reply in zip(cases, results, replies, strict=True)]}

