"""`bot eval DIR [--answers FILE] [--intents FILE.csv] [--cv K] [--generation [--limit N]]
[--out DIR]`: measure the bot's answers, the intent classifier and the dialogue model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.build import bot_embedder
from bot.commands import bot_folder_argument, loaded_bot
from bot.definition.config import BotDefinition
from bot.errors import BotError, library_errors


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("eval", help="evaluate the intent classifier and generation",
                            description="Score the trained classifier on a labelled CSV "
                            "(text + intent columns; 'out_of_scope' or empty = should be "
                            "rejected), cross-validate on the bot's own examples, and/or "
                            "compare the base and LoRA-tuned dialogue model on held-out "
                            "questions (eval/faq_paraphrases.yaml).")
    bot_folder_argument(parser)
    parser.add_argument("--answers", metavar="FILE", type=Path,
                        help="questions the bot has not seen with the entry that answers each "
                        "(or none): answered right / wrong / clarified / abstained")
    parser.add_argument("--intents", metavar="FILE.csv", type=Path,
                        help="labelled messages: columns text and intent (or label/category)")
    parser.add_argument("--cv", metavar="K", type=int,
                        help="also run K-fold cross-validation on the bot's intent examples")
    parser.add_argument("--generation", action="store_true",
                        help="score grounded answers of the base model and the bot's adapter "
                        "(token-F1, ROUGE-L, right citation) on eval/faq_paraphrases.yaml")
    parser.add_argument("--limit", metavar="N", type=int,
                        help="with --generation: at most N questions, spread over the FAQ")
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="where to write the JSON reports and confusion PNGs "
                        "(default: <bot>/.bot/eval)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.evaluation.intents import (
        cross_validate,
        evaluate_intents,
        plot_confusion,
        read_labelled_csv,
    )
    from bot.runtime import load_intents

    if args.intents is None and args.cv is None and not args.generation and args.answers is None:
        raise BotError("nothing to evaluate: give --answers FILE, --intents FILE.csv, --cv K "
                       "and/or --generation")
    bot = loaded_bot(args)
    out: Path = args.out or bot.build_dir / "eval"
    if args.answers is not None:
        _answers(bot, args.answers, out=out)
    if args.generation:
        _generation(bot, limit=args.limit, out=out)
    if args.intents is None and args.cv is None:
        return 0
    if not bot.config.intents:
        raise BotError(f"{bot.file}: the bot defines no intents")
    embedder = bot_embedder(bot)
    jobs = []
    if args.intents is not None:
        rows = read_labelled_csv(args.intents)
        classifier = load_intents(bot, embedder)
        jobs.append(("intents", f"Intents on {args.intents}", evaluate_intents(classifier, rows)))
    if args.cv is not None:
        report = cross_validate(bot, embedder, folds=args.cv, progress=True)
        jobs.append((f"cv{args.cv}", f"{args.cv}-fold cross-validation", report))
    for name, title, report in jobs:
        print(report.format(title=title), end="\n\n")
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}_report.json").write_text(json.dumps(report.to_dict(), indent=2))
        picture = plot_confusion(report, out / f"{name}_confusion.png", title=title)
        print(f"wrote {out / f'{name}_report.json'}, {picture} and "
              f"{picture.with_suffix('.svg')}\n")
    return 0


def _answers(bot: BotDefinition, path: Path, *, out: Path) -> None:
    """Right / wrong / clarified / abstained on held-out questions, errors, risk-coverage."""
    import asyncio

    from bot.evaluation.answers import (
        format_summary,
        load_answer_cases,
        plot_risk_coverage,
        score_cases,
    )
    from bot.runtime import BotRuntime

    cases = load_answer_cases(path)
    runtime = BotRuntime.load(bot)
    try:
        summary = score_cases(runtime, cases)
    finally:
        asyncio.run(runtime.close())
    print(format_summary(summary, title=f"Answers to {path}"), end="\n\n")
    out.mkdir(parents=True, exist_ok=True)
    threshold = summary["threshold"]
    if threshold is None and bot.config.faq is not None:
        threshold = bot.config.faq.answer_threshold
    summary["threshold"] = threshold
    (out / "answers.json").write_text(json.dumps(summary, indent=2))
    pictures = plot_risk_coverage(summary["risk_coverage"], out / "risk_coverage.png",
                                  title=f"{bot.config.name}: risk and coverage on {path.name}",
                                  threshold=threshold)
    print(f"wrote {out / 'answers.json'}, " + " and ".join(str(p) for p in pictures) + "\n")


def _generation(bot: BotDefinition, *, limit: int | None, out: Path) -> None:
    """Base model vs the bot's LoRA adapter on the held-out paraphrases."""
    from adapters.engines.choice import local_model
    from bot.evaluation.generation import evaluate_generation, format_report

    with library_errors(file=bot.shown(bot.file)):
        model = local_model(bot.config.model)
    try:
        results = [evaluate_generation(bot, adapter=tuned, limit=limit, model=model,
                                       progress=True) for tuned in (False, True)]
    finally:
        model.close()
    print(format_report(results), end="\n\n")
    out.mkdir(parents=True, exist_ok=True)
    target = out / "generation_report.json"
    target.write_text(json.dumps(results, indent=2))
    print(f"wrote {target}\n")
