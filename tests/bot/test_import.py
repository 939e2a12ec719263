"""`bot import`: each format read, cleaned, redacted, de-duplicated and stored whole or not
at all, through `import_files` and the CLI, on real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import TranscriptError
from bot.learning import Conversation, import_files, load_conversations, transcripts

from ..conftest import MakeBot

DATA = Path(__file__).parent / "data" / "import"
CARD = "4111 1111 1111 1111"  # passes the Luhn check


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(*records: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def chat(conversation_id: str, *turns: tuple[str, str] | tuple[str, str, str]) -> dict:
    """A conversation a line: turns of (role, content) or (role, content, name)."""
    return {"id": conversation_id, "messages": [
        {"role": t[0], "content": t[1], **({"name": t[2]} if len(t) == 3 else {})}
        for t in turns]}


def said(conversation: Conversation) -> list[tuple[str, str]]:
    return [(m.speaker, m.text) for m in conversation.messages]


def stored_files(root: Path) -> list[str]:
    folder = root / "conversations"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_openai_chats_map_roles_redact_and_round_trip(tmp_path: Path) -> None:
    past = write(tmp_path, "past.jsonl", jsonl(
        {"id": "c1", "messages": [
            {"role": "system", "content": "You are Acme's assistant."},
            {"role": "user", "content": f"My card {CARD} was swallowed, mail me at a@b.com",
             "timestamp": "2024-05-01T10:00:00Z"},
            {"role": "assistant", "name": "bot", "content": "I can block it for you."},
            {"role": "assistant", "name": "agent:Maria", "content": "Blocked; a new one is on "
             "its way."}]},
        chat("c2", ("user", "Do you do mortgages?"), ("assistant", "No, sorry."))))
    root = tmp_path / "bot"

    report = import_files(root, [past])

    (file,) = report.files
    assert (file.format, file.counts.conversations, file.counts.messages) == ("jsonl", 2, 5)
    assert (file.counts.non_chat, file.counts.redacted, file.counts.bot_only) == (1, 2, 1)
    first, second = load_conversations(root)
    assert said(first) == [("customer", "My card [CARD] was swallowed, mail me at [EMAIL]"),
                           ("bot", "I can block it for you."),
                           ("agent", "Blocked; a new one is on its way.")]
    assert first.messages[0].at == "2024-05-01T10:00:00+00:00"
    assert (first.id, first.source, second.source) == ("c1", "past.jsonl:1", "past.jsonl:2")
    assert said(second) == [("customer", "Do you do mortgages?"), ("bot", "No, sorry.")]
    assert file.stored == root / "conversations" / "0001-past.jsonl"
    assert CARD not in file.stored.read_text() and "a@b.com" not in file.stored.read_text()
    (record,) = json.loads((root / "conversations" / "imports.json").read_text())["imports"]
    assert record["path"] == str(past) and record["format"] == "jsonl"
    assert record["file"] == "0001-past.jsonl" and len(record["sha256"]) == 64
    assert record["counts"]["conversations"] == 2 and record["imported_at"]


def test_a_message_a_line_groups_spread_conversations_in_line_order(tmp_path: Path) -> None:
    past = write(tmp_path, "messages.jsonl", jsonl(
        {"conversation_id": 7, "role": "user", "content": "hello", "timestamp": 1714557600},
        {"conversation_id": "ann@example.com", "role": "user", "content": "is the app down?"},
        {"conversation_id": 7, "role": "agent", "content": "hi, how can I help?"},
        {"conversation_id": 7, "role": "user", "content": [{"type": "text", "text": "PIN"}]}))

    import_files(tmp_path / "bot", [past])

    seven, x = load_conversations(tmp_path / "bot")
    assert (seven.id, seven.source, x.id) == ("7", "messages.jsonl:1", "[EMAIL]")
    assert said(seven) == [("customer", "hello"), ("agent", "hi, how can I help?"),
                           ("customer", "PIN")]
    assert seven.messages[0].at == "2024-05-01T10:00:00+00:00"


def test_csv_through_the_cli_with_common_header_names(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot()
    export = write(root.parent, "desk.csv",
                   "Ticket ID;Author;Body;Created At\n"
                   "T1;End-User;\"Where is my card?\nIt's been 2 weeks\";2024-05-01 10:00\n"
                   "T2;contact;Call me on +44 20 7946 0958;\n"
                   "T1;Staff;We sent a new one.;2024-05-01 10:05\n"
                   "T2;assistant;I will ask an agent to call you.;\n"
                   "T1;system;Ticket closed;\n")

    assert main(["import", str(root), str(export)]) == 0

    out = capsys.readouterr().out
    assert f"imported 2 conversations (4 messages) from {export} (csv): 0 duplicates, " \
        "1 bot-only kept, 1 personal data item redacted -> " in out
    assert "dropped 1 system or activity message" in out
    t1, t2 = load_conversations(root)
    assert said(t1) == [("customer", "Where is my card?\nIt's been 2 weeks"),
                        ("agent", "We sent a new one.")]
    assert (t1.source, t1.messages[1].at) == ("desk.csv:2", "2024-05-01T10:05:00")
    assert said(t2) == [("customer", "Call me on [PHONE]"),
                        ("bot", "I will ask an agent to call you.")]
    assert t2.source == "desk.csv:4"  # the quoted text spans lines 2-3


def test_chatwoot_messages_drop_activity_and_private_notes(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot()

    assert main(["import", str(root), str(DATA / "chatwoot_messages.json")]) == 0

    assert "dropped 1 system or activity message, 1 private note" in capsys.readouterr().out
    (conversation,) = load_conversations(root)
    assert conversation.id == "13098"
    assert said(conversation) == [
        ("customer", "Hi, my card has not arrived. My email is [EMAIL]"),
        ("bot", "Cards arrive within 5-7 working days."),
        ("agent", "I have ordered a new card for you; it ships today.")]
    assert conversation.messages[0].at == "2024-05-01T14:00:10+00:00"


def test_chatwoot_conversations_with_string_types_and_automations(tmp_path: Path) -> None:
    export = write(tmp_path, "conversations.json", json.dumps({"data": {"payload": [
        {"id": 0, "messages": []},  # shows no format: the next one does
        {"id": 1, "messages": [
            {"message_type": "incoming", "content": "refund please", "created_at": 1714557600,
             "sender": {"type": "contact"}},
            {"message_type": "outgoing", "content": "We are away until Monday."},
            {"message_type": 3, "content": "Rate the conversation"},
            {"message_type": "outgoing", "content": "Refunded.", "sender_type": "User"}]}]}}))

    report = import_files(tmp_path / "bot", [export])

    counts = report.files[0].counts
    assert (report.files[0].format, counts.non_chat, counts.no_customer) == ("chatwoot", 1, 1)
    (conversation,) = load_conversations(tmp_path / "bot")
    assert said(conversation) == [("customer", "refund please"),
                                  ("bot", "We are away until Monday."), ("agent", "Refunded.")]


def test_zendesk_tickets_requester_agent_bot_and_private_comments(tmp_path: Path) -> None:
    report = import_files(tmp_path / "bot", [DATA / "zendesk_tickets.json"])

    counts = report.files[0].counts
    assert (report.files[0].format, counts.private, counts.bot_only) == ("zendesk", 1, 1)
    transfer, pin = load_conversations(tmp_path / "bot")
    assert said(transfer) == [
        ("customer", "How long does a transfer to Spain take? IBAN [IBAN]"),
        ("agent", "International transfers take 1-3 working days.")]
    assert (transfer.id, transfer.source) == ("35436", "zendesk_tickets.json:3")
    assert said(pin) == [("customer", "How do I reset my PIN?"),
                         ("bot", "Open the app, go to Card settings and choose Reset PIN.")]


def test_duplicates_repeats_empties_and_customerless_conversations_are_dropped(
        tmp_path: Path) -> None:
    root = tmp_path / "bot"
    hello = chat("a", ("user", "hello"), ("assistant", "hi", "agent:Tom"))
    first = write(tmp_path, "first.jsonl", jsonl(hello, chat("b", ("user", "card?"))))
    second = write(tmp_path, "second.jsonl", jsonl(
        {**hello, "id": "a2"},  # the same conversation as first.jsonl's "a"
        chat("c", ("user", "card?"), ("user", "  card?  "), ("user", ""), ("assistant", "Yes")),
        chat("c", ("user", "card?"), ("assistant", "Yes")),  # same as the one above, cleaned
        chat("d", ("assistant", "Anyone there?")),
        chat("a", ("user", "a new question"))))

    import_files(root, [first])
    counts = import_files(root, [second]).files[0].counts

    assert (counts.duplicates, counts.repeated, counts.empty, counts.no_customer) == (2, 1, 1, 1)
    stored = load_conversations(root)
    assert [c.id for c in stored] == ["a", "b", "c", "a-2"]  # ids unique across imports
    assert said(stored[2]) == [("customer", "card?"), ("bot", "Yes")]


def test_the_same_file_twice_is_skipped_saying_so(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot()
    past = write(root.parent, "past.jsonl", jsonl(chat("a", ("user", "hello"))))
    copy = write(root.parent, "copy.jsonl", past.read_text())
    assert main(["import", str(root), str(past)]) == 0
    capsys.readouterr()

    assert main(["import", str(root), str(copy)]) == 0

    assert capsys.readouterr().out.startswith(
        f"skipped {copy}: already imported as 0001-past.jsonl on ")
    assert stored_files(root) == ["0001-past.jsonl", "imports.json"]
    assert len(load_conversations(root)) == 1


def test_a_forced_format_reads_any_extension_and_unknown_shapes_ask_for_it(
        tmp_path: Path) -> None:
    log = write(tmp_path, "log.txt", jsonl(chat("a", ("user", "hi"))))
    assert import_files(tmp_path / "bot", [log], format="jsonl").files[0].counts.messages == 1
    odd = write(tmp_path, "odd.json", jsonl({"question": "?"}))
    with pytest.raises(TranscriptError, match=r"odd\.json:1: cannot tell the format.*--format"):
        import_files(tmp_path / "bot", [odd])


BAD_INPUTS = [
    ("past.jsonl", jsonl(chat("a", ("user", "hi"))) + '{"id": "b", "messages": [\n',
     r"past\.jsonl:2: invalid JSON: Expecting value"),
    ("past.jsonl", jsonl(chat("a", ("user", "hi")), {"id": "b", "messages": [{"content": "x"}]}),
     r"past\.jsonl:2: messages\[0\]\.role: missing field"),
    ("past.jsonl", jsonl(chat("a", ("user", "hi"), ("customer-service", "x"))),
     r"past\.jsonl:1: messages\[1\]\.role: unknown role 'customer-service'"),
    ("past.jsonl", jsonl({"conversation_id": "a", "role": "user", "content": 5}),
     r"past\.jsonl:1: content: must be text, got int"),
    ("past.jsonl", jsonl({"conversation_id": "a", "role": "user", "content": "x",
                          "timestamp": "yesterday"}),
     r"past\.jsonl:1: timestamp: not a timestamp: 'yesterday'"),
    ("past.jsonl", b'{"id": "a", "messages": []}\n\n{"id": "b", "messages": ["\xe9"]}\n',
     r"past\.jsonl:3: not UTF-8 text"),
    ("past.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00", r"past\.jsonl:3: binary data"),
    ("past.jsonl", "\n  \n", r"past\.jsonl: the file is empty"),
    ("past.jsonl", jsonl(chat("a", ("user", "x" * (1 << 20)))),
     r"past\.jsonl:1: line longer than 1 MiB"),
    ("past.jsonl", jsonl(chat("a", ("user", "x" * 100_001))),
     r"past\.jsonl:1: messages\[0\]\.content: longer than 100,000 characters"),
    ("desk.csv", "conversation_id,text\n1,hello\n",
     r"desk\.csv:1: header: no role column: the header needs one of role, author, sender"),
    ("desk.csv", "conversation,role,text\n1,user,hello\n1,manager,hi\n",
     r"desk\.csv:3: role: unknown role 'manager'"),
    ("desk.csv", "conversation,role,text\n1,user,hello\n1,agent\n",
     r"desk\.csv:3: text: missing field"),
    ("chat.json", (DATA / "chatwoot_messages.json").read_text().replace(
        '"message_type": 1,\n      "content_type": "text",\n      "content_attributes": {},\n'
        '      "created_at": 1714572160', '"message_type": 7,\n      "content_type": "text",\n'
        '      "content_attributes": {},\n      "created_at": 1714572160'),
     r"chat\.json:62: payload\[4\]\.message_type: unknown message_type 7"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_INPUTS,
                         ids=[m.split(": ", 1)[1][:40] for _, _, m in BAD_INPUTS])
def test_bad_files_name_file_line_and_field_and_nothing_is_written(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str], name: str, content: str | bytes,
        message: str) -> None:
    root = make_bot()
    good = write(root.parent, "good.jsonl", jsonl(chat("ok", ("user", "hello"))))
    bad = write(root.parent, name, content)

    assert main(["import", str(root), str(good), str(bad)]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert re.match(f"error: {re.escape(str(bad.parent))}/{message}", err), err
    assert stored_files(root) == []


def test_a_failed_write_leaves_earlier_imports_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "bot"
    import_files(root, [write(tmp_path, "one.jsonl", jsonl(chat("a", ("user", "hi"))))])
    before = stored_files(root)
    real_write = transcripts.write_text_atomic

    def failing_index(path: Path, text: str) -> None:  # the disk fills up at the index
        if path.name == transcripts.INDEX:
            raise OSError("No space left on device")
        real_write(path, text)

    monkeypatch.setattr(transcripts, "write_text_atomic", failing_index)
    two = write(tmp_path, "two.jsonl", jsonl(chat("b", ("user", "yo"))))
    with pytest.raises(OSError):
        import_files(root, [two])

    assert stored_files(root) == before
    assert [c.id for c in load_conversations(root)] == ["a"]


def test_no_imports_yet_a_missing_bot_folder_and_a_missing_file(
        make_bot: MakeBot, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_bot()
    assert load_conversations(root) == []
    past = write(root.parent, "past.jsonl", jsonl(chat("a", ("user", "hi"))))
    assert main(["import", str(root.parent / "nowhere"), str(past)]) == 2
    assert "nowhere: bot folder does not exist" in capsys.readouterr().err
    assert main(["import", str(root), str(past), str(root / "missing.jsonl")]) == 2
    assert capsys.readouterr().err == f"error: {root / 'missing.jsonl'}: file not found\n"
    assert stored_files(root) == []
