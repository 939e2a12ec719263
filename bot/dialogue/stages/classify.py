"""Classification: which intent the turn acts on, its sentiment and entities.

It never answers; later stages read ``turn.chosen``, ``turn.analysis`` and
``turn.entities``. A button payload equal to an intent name (``human_agent`` or
``/human_agent``) selects that intent directly. Without an analyzer (a bot with no intents)
only entities are found.
"""

from __future__ import annotations

import asyncio

from adapters.classifiers.intents import IntentPrediction
from adapters.classifiers.sentiment import Frustration
from bot.dialogue.handoff import FRUSTRATION_KEY
from bot.dialogue.turn import ChosenIntent, Parts, Turn


async def classify(turn: Turn, parts: Parts) -> None:
    payload = turn.text.strip().lstrip("/")
    handoff = parts.config.handoff
    if payload in parts.intents or (handoff is not None and payload == handoff.intent):
        turn.chosen = ChosenIntent(parts.intents.get(payload), payload, 1.0)
    elif parts.analyzer is not None:
        session = turn.session
        before = Frustration.from_dict(session.state.get(FRUSTRATION_KEY))
        analysis = await asyncio.to_thread(parts.analyzer.analyze, turn.text,
                                           frustration=before)
        session.state[FRUSTRATION_KEY] = analysis.frustration.to_dict()
        turn.analysis, turn.entities = analysis, analysis.entities
        turn.chosen = _chosen(parts, analysis.intent)
    if turn.analysis is None:
        turn.entities = parts.extractor.extract(turn.text)
    return None


def _chosen(parts: Parts, prediction: IntentPrediction | None) -> ChosenIntent:
    if prediction is None:
        return ChosenIntent()
    if prediction.ambiguous and len(prediction.ranking) > 1:
        names = tuple(name for name, _ in prediction.ranking[:2])
        return ChosenIntent(None, prediction.intent, prediction.confidence, names)
    name = None if prediction.out_of_scope else prediction.intent
    return ChosenIntent(parts.intents.get(name or ""), name, prediction.confidence)
