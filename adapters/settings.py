"""Settings of the models: persona, dialogue model and its LoRA, entities, classifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from foundation.checks import between, check, http_url, identifier, non_empty, positive, valid_regex

EngineName = Literal["llama.cpp", "transformers", "server"]  # what may run the dialogue model


@dataclass(frozen=True)
class Persona:
    name: str = "Assistant"
    description: str = "a friendly, concise customer-service assistant"
    greeting: str = "Hi! How can I help you today?"
    style: str = "Answer briefly and politely. Only use the facts you are given."


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
    checkpoint_every: int | None = check(positive, default=None)  # steps (else by time)
    checkpoint_minutes: float = check(positive, default=3.0)  # the first after one minute
    no_answer_ratio: float = check(between(0.0, 1.0), default=0.15)
    # memory: each step runs in micro-batches of at most this many (padded) tokens
    micro_batch_tokens: int = check(positive, default=1024)
    # adapt only the top N transformer blocks (None: all); backward stops below them
    top_layers: int | None = check(positive, default=15)


@dataclass(frozen=True)
class ModelServerSettings:
    """An OpenAI-compatible model server that runs the dialogue model
    (adapters/engines/remote_model.py).

    ``model`` is the served model name; ``adapter`` the served LoRA name to request instead
    (vLLM ``--lora-modules NAME=PATH``); ``lora_id`` the adapter's id on a llama.cpp server
    started with ``--lora`` files (sent as the request's ``lora`` field). ``api_key`` is sent
    as a bearer token, never shown.
    """

    url: str = check(http_url)  # the API base, e.g. http://10.0.0.7:8000/v1
    model: str = check(non_empty)
    adapter: str | None = check(non_empty, default=None)
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = check(positive, default=60.0)
    lora_id: int | None = check(between(0, 1024), default=None)


@dataclass(frozen=True)
class ModelSettings:
    """The dialogue model. ``engine``: ``llama.cpp`` (llama.cpp's server, started by the
    bot), ``transformers`` (in this process, torch) or ``server`` (the ``server`` section's
    OpenAI-compatible model server); unset, it is ``server`` when that section is there and
    ``llama.cpp`` otherwise (the choice: adapters/engines/choice.py). ``gguf_type``: how
    llama.cpp holds the weights."""

    base: str = "smollm2-135m"
    engine: EngineName | None = None
    gguf_type: Literal["Q8_0", "F16", "F32"] = "Q8_0"
    generation: bool = False  # answer FAQ/unknown turns with the model (bot/dialogue/answerer.py)
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
    server: ModelServerSettings | None = None  # engine server: no local model at serve time

    def __post_init__(self) -> None:
        if self.engine is not None and (self.engine == "server") != (self.server is not None):
            raise ValueError("model.engine 'server' and a model.server section go together "
                             f"(engine is {self.engine!r}, server is "
                             f"{'set' if self.server else 'not set'})")


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
    """Intent/sentiment classifier options (see ``adapters/classifiers/intents.py``).

    ``logistic_c``: inverse regularisation of the logistic regression; ``lexical_weight``:
    weight of the TF-IDF n-gram features beside the embedding (0 = embeddings only);
    ``builtin_out_of_scope``: add the packaged unrelated messages to the out-of-scope class;
    ``frustration_decay``: how much of the previous frustration level each message keeps;
    ``encoder_steps``: contrastive tuning steps of a copy of the encoder for the intent
    classifier (``adapters/training/encoder_tuning.py``; 0 = use the stock encoder).
    """

    confidence_threshold: float = check(between(0.0, 1.0), default=0.5)
    ambiguity_margin: float = check(between(0.0, 1.0), default=0.1)
    logistic_c: float = check(positive, default=30.0)
    lexical_weight: float = check(between(0.0, 5.0), default=0.3)
    builtin_out_of_scope: bool = True
    frustration_decay: float = check(between(0.0, 0.99), default=0.6)
    encoder_steps: int = check(between(0, 100_000), default=0)


@dataclass(frozen=True)
class ClassifierFolders:
    """Where the classifiers are saved."""

    intents: Path
    sentiment: Path


@dataclass(frozen=True)
class AnswerSettings:
    """The answer decision (``adapters/answering/answer_policy.py``): at most
    ``max_wrong_rate`` of the questions may be answered wrongly, measured on held-out folds
    of the bot's own data; ``policy: threshold`` answers from the FAQ by
    ``faq.answer_threshold`` alone."""

    max_wrong_rate: float = check(between(0.0, 1.0), default=0.05)
    # the share of questions the bot cannot answer that the policy is learned for
    unanswerable_share: float = check(between(0.01, 0.99), default=0.2)
    policy: Literal["learned", "threshold"] = "learned"
    multi_part: bool = True  # answer "A and B?" part by part
    # {part}: "the second part of your question"; never the user's own words, which the
    # bot would otherwise repeat (markup, phone numbers, "give them your PIN")
    unknown_part: str = ("I don't have an answer to {part}; you can ask to talk to a person "
                         "about it.")


@dataclass(frozen=True)
class LanguageSettings:
    """``language:`` written as a mapping (``adapters/classifiers/language.py``): the bot's
    language (its FAQ's and responses'), and each message's language identified among
    ``candidates``; a message counts only when at least ``min_chars`` long (a Chinese,
    Japanese or Korean character counts twice) and identified with at least
    ``min_confidence``. ``language: en`` (a string) is the bot's language with no
    identification."""

    code: str = check(non_empty, default="en")
    detect: bool = True
    candidates: tuple[str, ...] = ("en", "es", "de", "fr", "it", "pt", "nl", "zh")
    min_confidence: float = check(between(0.0, 1.0), default=0.8)
    min_chars: int = check(positive, default=12)

    def __post_init__(self) -> None:
        if self.detect and self.code not in self.candidates:
            raise ValueError(f"language.candidates must include the bot's own language "
                             f"{self.code!r}")
