"""The check a generated answer passes before anybody sees it (adapters/answering/grounding.py)."""

from __future__ import annotations

import pytest

from adapters.answering.grounding import check_generated
from retrieval.documents import Passage


@pytest.mark.parametrize(("answer", "problems"), [
    ("Contactless payments are limited to £100 per payment.", ()),
    ("Contactless payments are limited to one hundred pounds.", ()),
    ("Contactless payments are limited to £250 per payment.", ("number:250",)),
    ("Contactless payments are limited to £100 in Germany.", ("name:germany",)),
    ("Contactless is not working on my card?: It is limited to £100.", ("echo",)),
    ("Assistant: contactless payments are limited to £100.", ("echo",)),
    ("Yes, contactless is limited?", ("restates",)),
    ("It is limited to £100 per payment. It is limited to £100 per payment.", ("repeats",)),
    ("Ava says contactless payments are limited to £100 at Acme Bank.", ()),
])
def test_generated_answers_are_checked_against_their_passages(
        answer: str, problems: tuple[str, ...]) -> None:
    passage = Passage("contactless", "Contactless payments are limited to £100 per payment.",
                      "faq.yaml", question="Contactless is not working on my card?")
    check = check_generated(answer, question="is contactless limited", passages=[passage],
                            known_names=["Ava", "the Acme Bank assistant"])
    assert check.problems == problems and check.ok == (not problems)
