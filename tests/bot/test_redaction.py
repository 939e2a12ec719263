"""PII detection and redaction of stored transcripts (not of what the router sees)."""

from __future__ import annotations

import pytest

from bot.server.pipeline import PIPELINE
from bot.sessions.redaction import find_pii, iban_ok, luhn_ok, redact

from ..conftest import MakeBot
from .production_support import LIGHT_BOT
from .test_security import LeakyRouter, leaky_client


@pytest.mark.parametrize(("text", "expected"), [
    ("my card is 4111 1111 1111 1111, thanks", "my card is [CARD], thanks"),
    ("card 4111-1111-1111-1111 expired", "card [CARD] expired"),
    ("amex 378282246310005", "amex [CARD]"),
    ("write to john.doe+bank@example.co.uk!", "write to [EMAIL]!"),
    ("call +44 20 7946 0958 or 020 7946 0958", "call [PHONE] or [PHONE]"),
    ("US: (555) 123-4567", "US: [PHONE]"),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN] please"),
    ("iban: de89370400440532013000.", "iban: [IBAN]."),
])
def test_personal_data_is_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",          # fails the Luhn check
    "IBAN GB82WEST12345698765433",       # fails mod 97
    "on 2024-01-15 I paid 1,000 EUR",
    "transfers take 1-3 working days; cards 5-7",
    "my PIN is not 1234", "version 1.2.3.4", "sort code 12-34-56",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert find_pii(text) == [] and redact(text) == text


def test_checksums() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")


@pytest.mark.parametrize("enabled", [True, False])
async def test_stored_transcript_is_redacted_but_router_sees_the_message(
        make_bot: MakeBot, enabled: bool) -> None:
    root = make_bot(LIGHT_BOT + f"security:\n  redact_pii: {str(enabled).lower()}\n", files={})
    text = "my card 4111 1111 1111 1111 was charged twice, mail me at jo@example.com"
    router = LeakyRouter({text: "Sorry about that, jo@example.com, we will look into it."})
    client = await leaky_client(root, router)
    try:
        response = await client.post("/webhooks/rest", json={"sender": "jo", "message": text})
        assert response.status == 200
        (reply,) = await response.json()
        assert "jo@example.com" in reply["text"]  # the user's own data is shown to them
        assert router.seen[0].text == text
        store = client.app[PIPELINE].store  # type: ignore[index]
        session = await store.get("rest:jo", channel="rest", sender="jo")
        stored = [t["text"] for t in session.history]
        if enabled:
            assert stored == ["my card [CARD] was charged twice, mail me at [EMAIL]",
                              "Sorry about that, [EMAIL], we will look into it."]
        else:
            assert stored[0] == text
        await store.log_event("rest:jo", "note", {"said": text, "n": [text]})
        (note,) = [e async for e in store.iter_events(key="rest:jo") if e["kind"] == "note"]
        assert ("4111" not in str(note["data"])) == enabled
    finally:
        await client.close()
