"""A bot whose knowledge is documents only learns its answer decision from their headings."""

from __future__ import annotations

from pathlib import Path

from adapters.answering.policy_data import train_policy
from adapters.answering.section_questions import document_sections, heading_of
from adapters.settings import AnswerSettings, ClassifierSettings
from retrieval.embedder import SentenceEmbedder
from retrieval.index import FaqIndex
from retrieval.passages import Passage

MANUAL = "Coffee maker manual"
SECTIONS = [  # (heading path under the manual's title, text)
    ("1. Setting up > 1.1 Unpacking", "Remove the tape and the foam blocks. Keep the box for "
     "returns within 30 days."),
    ("1. Setting up > 1.2 Filling the water tank", "Lift the lid and pour cold water up to the "
     "MAX line. Never fill it with milk or hot water."),
    ("2. Brewing > 2.1 Choosing the strength", "Press the bean button once for mild, twice for "
     "strong coffee. The light shows the chosen strength."),
    ("2. Brewing > 2.2 Using the timer", "Hold the clock button for three seconds and set the "
     "hour at which the machine starts brewing on its own."),
    ("3. Cleaning > 3.1 Descaling", "Every three months run a cycle with descaling liquid and "
     "then two cycles with clean water."),
    ("3. Cleaning > 3.2 The dishwasher", "The jug and the filter holder may go in the "
     "dishwasher; the base with the heater must never get wet."),
    ("4. Troubleshooting > 4.1 The coffee is cold", "Preheat the jug with hot water and check "
     "that the warming plate is switched on."),
    ("4. Troubleshooting > 4.2 Water leaks", "Check that the tank sits firmly on its seal and "
     "that the filter holder is closed."),
    ("5. Warranty > 5.1 What is covered", "Faults in materials and workmanship are repaired "
     "free for two years from the date of purchase."),
    ("5. Warranty > 5.2 Making a claim", "Send the receipt and a short description of the "
     "fault to our service centre by post or e-mail."),
    ("6. Safety", "Keep the machine away from children and never open the base."),
]


def manual_passages() -> list[Passage]:
    return [Passage(f"manual-{n}", text, "manual.html", title=f"{MANUAL} > {path}")
            for n, (path, text) in enumerate(SECTIONS)]


def test_a_heading_is_its_last_part_without_numbering() -> None:
    assert heading_of("Manual > 2. Brewing > 2.2 Using the timer") == "Using the timer"
    assert heading_of("Manual > A. Appendix") == "Appendix"
    assert heading_of("Manual > 2.7. PERFORMANCE NOTES") == "PERFORMANCE NOTES"
    assert heading_of("Manual") == ""  # a document's title is no heading


def test_sections_group_passages_under_their_heading_path() -> None:
    passages = [*manual_passages(),
                Passage("extra", "More on descaling.", "manual.html",
                        title=f"{MANUAL} > 3. Cleaning > 3.1 Descaling"),
                Passage("intro", "Welcome.", "manual.html", title=MANUAL),
                Passage("faq-1", "Yes.", "faq.yaml", title="Q", question="Q")]
    sections = {s.title.split(" > ", 1)[1]: s for s in document_sections(passages)}
    descaling = sections["3. Cleaning > 3.1 Descaling"]
    assert descaling.questions == (f"Descaling, {MANUAL}",)  # one word: a topic too broad
    timer = sections["2. Brewing > 2.2 Using the timer"]
    assert timer.questions == ("Using the timer", f"Using the timer, {MANUAL}")
    assert [passages[n].id for n in descaling.owners] == ["manual-4", "extra"]
    assert "1. Setting up" not in sections  # no passage of its own: nothing to ask
    assert all(passages[n].question is None for s in sections.values() for n in s.owners)
    assert not any(s.title == MANUAL for s in sections.values())


def test_documents_only_get_a_learned_decision(embedder: SentenceEmbedder,
                                               tmp_path: Path) -> None:
    passages = manual_passages()
    index = FaqIndex.build(passages, embedder)
    policy, learned = train_policy(tmp_path / "policy", index, embedder, [], None,
                                   ClassifierSettings(), AnswerSettings(), k=3)
    assert learned and policy.learned, policy.manifest.get("not_learned")
    questions = policy.manifest["questions"]
    asked = sum(len(s.questions) for s in document_sections(passages))
    assert len(SECTIONS) < asked < 2 * len(SECTIONS)
    assert questions["section headings"] == questions["uncovered"] == asked
    assert questions["off-topic"] > 0

    def decide(text: str) -> str:
        return policy.decide(text, index.search_vector(embedder.embed([text])[0], 3),
                             None).action

    assert decide("What's the weather like in Paris tomorrow?") == "abstain"
    assert decide("Can you book me a flight to Rome?") == "abstain"
