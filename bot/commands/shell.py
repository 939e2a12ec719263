"""`bot shell DIR`: chat with the bot in the terminal."""

from __future__ import annotations

import argparse
import asyncio

from bot.commands import bot_folder_argument, loaded_bot
from bot.errors import BadRequest
from bot.runtime import BotRuntime
from foundation.messages import BotReply, UserMessage


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("shell", help="chat with the bot in the terminal")
    bot_folder_argument(parser)
    parser.add_argument("--sender", default="shell-user", help="session id to use")
    parser.set_defaults(func=run)


def format_extras(reply: BotReply) -> str:
    """Citations and handoff state, one line each (empty when there are none)."""
    lines = [f"  [source: {c.title or c.passage_id} — {c.source}]" for c in reply.citations]
    if reply.handoff:
        lines.append("  [handed off to a human agent]")
    return "".join(f"\n{line}" for line in lines)


async def _say(runtime: BotRuntime, message: UserMessage) -> None:
    """Print the reply as it streams, then its citations."""
    print(f"{runtime.bot.config.persona.name}> ", end="", flush=True)
    shown = ""
    stream = runtime.dialogue.stream(message)
    async for delta in stream:
        shown += delta
        print(delta, end="", flush=True)
    reply = stream.reply
    assert reply is not None
    print(("" if reply.text == shown else f"\n{reply.text}") + format_extras(reply), flush=True)


async def _chat(runtime: BotRuntime, sender: str) -> None:
    print(runtime.bot.config.persona.greeting)
    loop = asyncio.get_running_loop()
    try:
        while True:
            text = await loop.run_in_executor(None, input, "you> ")
            if text.strip() in {"/quit", "/exit"}:
                break
            if not text.strip():
                continue
            try:
                await _say(runtime, UserMessage(sender=sender, text=text, channel="shell"))
            except BadRequest as exc:
                print(f"  ({exc})")
    except EOFError:
        pass
    finally:
        await runtime.close()


def run(args: argparse.Namespace) -> int:
    runtime = BotRuntime.load(loaded_bot(args))
    print("Type a message; /quit to leave.")
    asyncio.run(_chat(runtime, args.sender))
    return 0
