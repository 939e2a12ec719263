from __future__ import annotations

import pytest

from bot.definition.dialogue import Button, Response
from bot.definition.loader import load_bot
from bot.dialogue.templates import Templates, session_context
from bot.errors import ConfigError, TemplateError
from bot.sessions.store import Session

from ..conftest import MakeBot


def session(**slots: object) -> Session:
    return Session(key="rest:ann", channel="rest", sender="ann", started_at=0.0,
                   updated_at=0.0, slots=dict(slots))


def test_templates_render_slots_variables_and_buttons() -> None:
    responses = {"status": Response(
        text="{{ bot_name }}: card {{ card_last4 }} is {{ slots.status | upper }}, {{ sender }}."
             "{% if eta %} ETA {{ eta }}.{% endif %}",
        buttons=(Button(title="More about {{ card_last4 }}", payload="card_{{ card_last4 }}"),))}
    templates = Templates(responses, seed=1, bot_name="Ava")
    rendered = templates.response("status", session_context(
        session(card_last4="4821", status="delivered")))
    assert rendered.text == "Ava: card 4821 is DELIVERED, ann."  # missing `eta` is empty
    assert rendered.buttons == ({"title": "More about 4821", "payload": "card_4821"},)


def test_variations_are_random_but_seedable() -> None:
    response = Response(text="a", variations=("b", "c", "d"))

    def picks(seed: int) -> list[str]:
        templates = Templates({"r": response}, seed=seed)
        return [templates.response("r", {}).text for _ in range(40)]

    assert picks(3) == picks(3)
    assert set(picks(3)) == {"a", "b", "c", "d"}
    assert picks(3) != picks(4)


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ slots.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ slots.update({'x': 1}) }}",  # values are immutable in the sandbox
])
def test_unsafe_access_is_refused(source: str) -> None:
    templates = Templates()
    with pytest.raises(TemplateError, match=r"unsafe|cannot render"):
        templates.render(source, session_context(session(card_last4="4821")))


def test_user_text_is_never_a_template() -> None:
    templates = Templates()
    context = session_context(session(name="{{ ''.__class__ }} {% raw %}"))
    assert templates.render("Hi {{ name }}", context) == "Hi {{ ''.__class__ }} {% raw %}"


def test_template_syntax_errors_are_config_errors_with_file_and_key(make_bot: MakeBot) -> None:
    root = make_bot("name: b\nresponses: responses.yaml\n", files={
        "responses.yaml": "ok:\n  text: fine\nbroken:\n  text: fine\n  variations:\n"
                          "    - 'Hello {{ name '\n"})
    with pytest.raises(ConfigError) as caught:
        load_bot(root)
    error = caught.value
    assert error.file.endswith("responses.yaml") and error.path == "responses.broken.variations[0]"
    assert error.line == 6 and "template syntax error" in str(error)


def test_clarify_template_is_checked_too(make_bot: MakeBot) -> None:
    root = make_bot("name: b\ndialogue:\n  clarify: 'A or {% if %}?'\n", files={})
    with pytest.raises(ConfigError, match=r"dialogue\.clarify: template syntax error"):
        load_bot(root)
