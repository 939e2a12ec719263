"""Why the gate refused a candidate, in words a team can act on: each held-out question that
got worse and each conversation test that fails now, with the served version's reply and the
candidate's, and the accepted suggestion whose knowledge the new reply used, where there is
one. A test that expects the bot not to know what new knowledge now answers is named as such:
the team updates the test or takes the knowledge back, instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.versions.measuring import Measured

SHOWN = 10  # questions listed; the rest are counted


def got_worse(before: str, after: str) -> bool:
    """Right became anything else, or anything became wrong."""
    return (before == "right" and after != "right") or (after == "wrong" and before != "wrong")


def _entries(found: dict[str, Any]) -> str:
    return ", ".join(found.get("entries") or []) or "no entry"


def _causes(found: dict[str, Any], learned: Mapping[str, str]) -> list[str]:
    return sorted({learned[e] for e in found.get("entries") or [] if e in learned})


def explain(candidate: Measured, served: Measured, learned: Mapping[str, str],
            bot_shown: str) -> list[str]:
    """Lines saying what got worse; ``learned`` maps an entry id (``intent:<name>`` for an
    intent) to the accepted suggestion it came from."""
    lines: list[str] = []
    causes: set[str] = set()
    worse = [(case, served.answers[case], now) for case, now in candidate.answers.items()
             if case in served.answers
             and got_worse(served.answers[case]["outcome"], now["outcome"])]
    if worse:
        lines.append(f"{len(worse)} held-out question(s) answered worse than by the served "
                     "version:")
    for case, before, now in worse[:SHOWN]:
        lines += [f"  {case} {now['question']!r}: {before['outcome']} -> {now['outcome']}",
                  f"    served:    {before['reply'] or '(nothing)'} [{_entries(before)}]",
                  f"    candidate: {now['reply'] or '(nothing)'} [{_entries(now)}]"]
        found = _causes(now, learned)
        causes.update(found)
        if found:
            lines.append(f"    uses knowledge from: {', '.join(found)}")
    if len(worse) > SHOWN:
        lines.append(f"  ... and {len(worse) - SHOWN} more")
    contradicted: list[str] = []
    for name, steps in candidate.tests.items():
        if name in served.tests:
            continue
        lines.append(f"conversation test {name!r} fails now (the served version passes it):")
        for step in steps:
            found = _causes(step, learned)
            causes.update(found)
            lines += [f"  step {step['step']} {step['user']!r}: {'; '.join(step['problems'])}",
                      f"    candidate: {step['reply'] or '(nothing)'} [{_entries(step)}]"]
            if step.get("abstains") and found:
                contradicted.append(name)
                lines.append(f"    the test expects the bot not to know this, and knowledge "
                             f"from {', '.join(found)} answers it now: the test predates "
                             "that knowledge")
            elif found:
                lines.append(f"    uses knowledge from: {', '.join(found)}")
    if causes or contradicted:
        lines.append("to fix: " + "; or ".join(_fixes(sorted(causes), contradicted, bot_shown)))
    return lines


def _fixes(causes: list[str], contradicted: list[str], bot_shown: str) -> list[str]:
    fixes: list[str] = []
    if contradicted:
        fixes.append("update the test(s) " + ", ".join(repr(t) for t in dict.fromkeys(
            contradicted)) + " if the bot should answer now")
    if causes:
        fixes.append("edit or take back " + ", ".join(
            f"{c} (`bot suggest {bot_shown} --unaccept {c}`)" for c in causes)
            + f", then `bot train {bot_shown}` again")
    fixes.append(f"serve the candidate anyway with `bot promote {bot_shown}`")
    return fixes
