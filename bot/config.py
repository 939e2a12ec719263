"""Bot definitions: ``bot.yaml`` (and the files it references) as frozen dataclasses.

A top-level section may be written inline or as the name of another YAML file in the bot
folder (``intents: intents.yaml``); errors then name that file.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.config_dialogue import (
    ActionDefinition,
    Button,  # noqa: F401  (re-exported: Response.buttons)
    DialogueSettings,
    FormDefinition,
    HandoffSettings,
    Response,
    check_dialogue,
    valid_regex,
)
from bot.errors import ConfigError
from bot.schema import (
    Prebuilt,
    Where,
    between,
    build,
    check,
    convert,
    http_url,
    identifier,
    non_empty,
    positive,
)
from bot.yamlio import LocatedDict, load_yaml

BUILD_DIR = ".bot"
INCLUDABLE = ("intents", "responses", "faq", "channels", "entities", "forms", "actions")


@dataclass(frozen=True)
class Persona:
    name: str = "Assistant"
    description: str = "a friendly, concise customer-service assistant"
    greeting: str = "Hi! How can I help you today?"
    style: str = "Answer briefly and politely. Only use the facts you are given."


@dataclass(frozen=True)
class FaqSettings:
    sources: tuple[str, ...] = check(non_empty)
    top_k: int = check(positive, default=3)
    answer_threshold: float = check(between(-1.0, 1.0), default=0.55)
    chunk_words: int = check(positive, default=120)
    chunk_overlap: int = check(between(0, 1000), default=30)


@dataclass(frozen=True)
class EmbedderSettings:
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = check(positive, default=64)
    device: str = "cpu"


@dataclass(frozen=True)
class FallbackSettings:
    message: str = (
        "Sorry, I'm not sure about that. Could you rephrase, or ask to talk to a person?"
    )


@dataclass(frozen=True)
class SessionSettings:
    store: Literal["sqlite", "redis"] = "sqlite"
    path: str = f"{BUILD_DIR}/sessions.sqlite3"
    ttl_minutes: float = check(positive, default=30.0)
    max_history: int = check(positive, default=20)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = ""  # key namespace; "" means "supportbot:<bot name>"
    lock_lease_s: float = check(positive, default=10.0)


@dataclass(frozen=True)
class Intent:
    name: str = check(identifier)
    examples: tuple[str, ...] = check(non_empty)
    response: str | None = None
    description: str = ""
    form: str | None = None  # start this form (bot/forms.py)
    action: str | None = None  # run this HTTP action (bot/actions.py)
    handoff: bool = False  # pass the conversation to a person
    title: str = ""  # how "Did you mean ...?" names it (default: the name, spaced)


@dataclass(frozen=True)
class LoraSettings:
    r: int = check(positive, default=8)
    alpha: int = check(positive, default=16)
    dropout: float = check(between(0.0, 0.9), default=0.05)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    epochs: float = check(positive, default=1.0)
    learning_rate: float = check(positive, default=1e-3)
    batch_size: int = check(positive, default=8)
    max_length: int = check(positive, default=512)
    max_steps: int | None = None
    seed: int = 13
    checkpoint_every: int = check(positive, default=10)
    no_answer_ratio: float = check(between(0.0, 1.0), default=0.15)


@dataclass(frozen=True)
class ModelServerSettings:
    """An OpenAI-compatible model server that runs the dialogue model (adapters/remote_model.py).

    ``model`` is the served model name; ``adapter`` the served LoRA name to request instead
    (vLLM ``--lora-modules NAME=PATH``). ``api_key`` is sent as a bearer token, never shown.
    """

    url: str = check(http_url)  # the API base, e.g. http://10.0.0.7:8000/v1
    model: str = check(non_empty)
    adapter: str | None = check(non_empty, default=None)
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = check(positive, default=60.0)


@dataclass(frozen=True)
class ModelSettings:
    base: str = "smollm2-135m"
    generation: bool = False  # answer FAQ/unknown turns with the model (bot/answering.py)
    exact_answer_threshold: float = check(between(0.0, 1.0), default=0.8)
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_new_tokens: int = check(positive, default=96)
    history_turns: int = check(between(0, 50), default=2)  # earlier exchanges in prompts
    passage_words: int = check(positive, default=80)
    # the prompt's passages score at most this far below the best one (None: all relevant)
    passage_margin: float | None = check(between(0.0, 1.0), default=0.08)
    threads: int | None = None
    max_batch: int = check(between(1, 256), default=8)  # concurrent requests per model call
    batch_wait_ms: float = check(between(0.0, 1000.0), default=10.0)  # wait to fill a batch
    lora: LoraSettings = field(default_factory=LoraSettings)
    server: ModelServerSettings | None = None  # set: no local model at serve time


@dataclass(frozen=True)
class EntityDefinition:
    """An entity under ``entities``: a ``pattern`` (regex) or a ``lookup`` list of values."""

    name: str = check(identifier)
    pattern: str | None = check(valid_regex, default=None)
    lookup: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if (self.pattern is None) == (not self.lookup):
            raise ValueError(f"entity {self.name!r} needs exactly one of 'pattern' or 'lookup'")


@dataclass(frozen=True)
class ClassifierSettings:
    """Intent/sentiment classifier options (see ``adapters/intents.py``).

    ``logistic_c``: inverse regularisation of the logistic regression; ``lexical_weight``:
    weight of the TF-IDF n-gram features beside the embedding (0 = embeddings only);
    ``builtin_out_of_scope``: add the packaged unrelated messages to the out-of-scope class;
    ``frustration_decay``: how much of the previous frustration level each message keeps;
    ``encoder_steps``: contrastive tuning steps of a copy of the encoder for the intent
    classifier (``adapters/encoder_tuning.py``; 0 = use the stock encoder).
    """

    confidence_threshold: float = check(between(0.0, 1.0), default=0.5)
    ambiguity_margin: float = check(between(0.0, 1.0), default=0.1)
    logistic_c: float = check(positive, default=30.0)
    lexical_weight: float = check(between(0.0, 5.0), default=0.3)
    builtin_out_of_scope: bool = True
    frustration_decay: float = check(between(0.0, 0.99), default=0.6)
    encoder_steps: int = check(between(0, 100_000), default=0)


@dataclass(frozen=True)
class ServerSettings:
    max_message_chars: int = check(positive, default=4000)
    turn_timeout_s: float = check(positive, default=60.0)
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = check(positive, default=64 * 1024)


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: up to ``burst`` requests at once, refilled at ``per_minute``."""

    per_minute: float = check(positive, default=60.0)
    burst: int = check(positive, default=30)


@dataclass(frozen=True)
class SecuritySettings:
    """API tokens, rate limits, PII redaction and prompt-injection handling (bot/security.py)."""

    api_tokens: tuple[str, ...] = ()
    metrics_require_token: bool = False
    sender_rate_limit: RateLimit | None = field(default_factory=RateLimit)
    ip_rate_limit: RateLimit | None = field(
        default_factory=lambda: RateLimit(per_minute=1200.0, burst=200))
    trusted_proxies: tuple[str, ...] = ()
    redact_pii: bool = True
    injection_guard: Literal["block", "flag", "off"] = "block"
    injection_reply: str = (
        "I can only help with questions about our products and services."
    )
    mask_env: tuple[str, ...] = ()  # environment variables whose values never reach the logs


@dataclass(frozen=True)
class BotConfig:
    name: str = check(identifier)
    description: str = ""
    language: str = "en"
    persona: Persona = field(default_factory=Persona)
    faq: FaqSettings | None = None
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    fallback: FallbackSettings = field(default_factory=FallbackSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    intents: tuple[Intent, ...] = ()
    entities: tuple[EntityDefinition, ...] = ()
    responses: dict[str, Response] = field(default_factory=dict)
    model: ModelSettings = field(default_factory=ModelSettings)
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    channels: dict[str, Any] = field(default_factory=lambda: {"rest": {}})
    forms: dict[str, FormDefinition] = field(default_factory=dict)
    actions: dict[str, ActionDefinition] = field(default_factory=dict)
    handoff: HandoffSettings | None = None  # no section: the bot never hands off
    dialogue: DialogueSettings = field(default_factory=DialogueSettings)


@dataclass(frozen=True)
class BotDefinition:
    """A loaded bot: its folder, its validated config and the file it came from."""

    root: Path
    config: BotConfig
    file: Path

    @property
    def build_dir(self) -> Path:
        return self.root / BUILD_DIR

    def path(self, relative: str) -> Path:
        """Resolve a path written in the YAML relative to the bot folder."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.root / candidate


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def bot_file(directory: Path) -> Path:
    """The definition file of a bot folder (``bot.yaml`` or ``bot.yml``)."""
    if directory.is_file():
        return directory
    for name in ("bot.yaml", "bot.yml"):
        if (directory / name).is_file():
            return directory / name
    if not directory.exists():
        raise ConfigError("bot folder does not exist", file=_display(directory))
    raise ConfigError("no bot.yaml in this folder", file=_display(directory))


def load_bot(directory: str | Path) -> BotDefinition:
    """Load and validate a bot folder; raise :class:`ConfigError` naming what is wrong."""
    file = bot_file(Path(directory))
    root = file.parent
    shown = _display(file)
    raw = load_yaml(file, display=shown)
    top = Where(shown)
    if not isinstance(raw, dict):
        raise top.error("the top level must be a mapping with at least a 'name'")
    hints = typing.get_type_hints(BotConfig)
    data = dict(raw)
    sections: dict[str, tuple[Where, Any]] = {k: (top.key(raw, k), raw.get(k)) for k in raw}
    for key in INCLUDABLE:
        value = data.get(key)
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            included = root / value
            if not included.is_file():
                raise top.key(raw, key).error(f"included file {value!r} not found")
            included_name = _display(included)
            parsed = load_yaml(included, display=included_name)
            where = Where(included_name, key, getattr(parsed, "line", None))
            sections[key] = (where, parsed)
            data[key] = Prebuilt(convert(hints[key], parsed, where))
    located = LocatedDict(data)
    located.key_lines = dict(getattr(raw, "key_lines", {}))
    located.line = getattr(raw, "line", None)
    config = build(BotConfig, located, top)
    _cross_check(config, sections.get("intents", (top.key(raw, "intents"), None)))
    if config.model.generation and config.faq is None:
        model = top.key(raw, "model")
        raise model.key(raw.get("model"), "generation").error(
            "grounded generation answers from the FAQ: add a 'faq' section or set it to false")
    check_dialogue(config, {**sections, ".": (top, raw)})
    from channels.registry import validate_channel_settings

    validate_channel_settings(config.channels, sections.get("channels", (top, None))[0])
    return BotDefinition(root=root, config=config, file=file)


def _cross_check(config: BotConfig, intents_section: tuple[Where, Any]) -> None:
    """Checks across sections: unique intent names, responses that exist."""
    intents_where, intents_raw = intents_section
    seen: set[str] = set()
    for i, intent in enumerate(config.intents):
        where = intents_where.item(intents_raw, i)
        if intent.name in seen:
            raise Where(where.file, f"{where.path}.name", where.line).error(
                f"duplicate intent {intent.name!r}"
            )
        seen.add(intent.name)
        if intent.response is not None and intent.response not in config.responses:
            known = ", ".join(sorted(config.responses)) or "(none defined)"
            raise Where(where.file, f"{where.path}.response", where.line).error(
                f"unknown response {intent.response!r}; defined responses: {known}"
            )
