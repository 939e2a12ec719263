"""Bot definitions as frozen dataclasses, and where a bot folder keeps what it builds.

``bot.definition.loader`` reads ``bot.yaml`` (and the files it includes) into these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from adapters.settings import (
    AnswerSettings,
    ClassifierFolders,
    ClassifierSettings,
    EntityDefinition,
    LanguageSettings,
    LoraSettings,  # noqa: F401  (re-exported: ModelSettings.lora)
    ModelServerSettings,  # noqa: F401  (re-exported: ModelSettings.server)
    ModelSettings,
    Persona,
)
from bot.definition.dialogue import (
    ActionDefinition,
    Button,  # noqa: F401  (re-exported: Response.buttons)
    DialogueSettings,
    FormDefinition,
    HandoffSettings,
    Response,
)
from bot.errors import ConfigError
from foundation.checks import between, check, identifier, non_empty, positive
from retrieval.documents import SUFFIXES as SOURCE_SUFFIXES
from retrieval.knowledge import FaqSource
from retrieval.settings import EmbedderSettings, FaqSettings
from retrieval.sites.settings import SiteSource, site_of

BUILD_DIR = ".bot"
VERSIONS_DIR = "versions"  # under BUILD_DIR: one folder per trained version (bot/versions/)
CURRENT_FILE = "current"  # in VERSIONS_DIR: the number of the version being served


def served_version(build_dir: Path) -> int | None:
    """The number of the version served now (``bot train`` promotes it); None before any."""
    try:
        return int((build_dir / VERSIONS_DIR / CURRENT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def served_folder(build_dir: Path) -> Path:
    """The served artefacts: the promoted version, or the build folder before any."""
    number = served_version(build_dir)
    return build_dir if number is None else build_dir / VERSIONS_DIR / str(number)


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
    hash_senders: Literal["auto", "never"] = "auto"  # auto: e-mail/phone senders become hashes


@dataclass(frozen=True)
class Intent:
    name: str = check(identifier)
    examples: tuple[str, ...] = check(non_empty)
    response: str | None = None
    description: str = ""
    form: str | None = None  # start this form (bot/dialogue/forms.py)
    action: str | None = None  # run this HTTP action (bot/dialogue/actions.py)
    handoff: bool = False  # pass the conversation to a person
    title: str = ""  # how "Did you mean ...?" names it (default: the name, spaced)
    faq: str | None = None  # the FAQ entry its response states (cited with it)


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
    """API tokens, rate limits, PII redaction and injection handling (bot/server/security.py)."""

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
    session_secret: str | None = None  # signs browser session tokens (write ``${ENV}``)
    session_ttl_hours: float = check(positive, default=168.0)  # a session token's lifetime


@dataclass(frozen=True)
class GateSettings:
    """What a newly trained version is measured on against the served one before it is
    promoted (bot/versions/): held-out questions in ``bot eval --answers`` form, and the
    conversation tests. It may be at most ``margin`` worse on answered-right and on
    answered-wrong, and may not fail a conversation test the served version passes."""

    answers: str | None = None  # default: eval/answers.yaml when the bot has one
    tests: str = "tests"  # run when the folder holds tests
    marks: str = "eval/marks.yaml"  # review marks (bot/learning/marks.py), when the file exists
    margin: float = check(between(0.0, 1.0), default=0.02)


@dataclass(frozen=True)
class VersionSettings:
    """``bot train`` keeps the last ``keep`` versions of the trained artefacts."""

    keep: int = check(positive, default=5)
    gate: GateSettings = field(default_factory=GateSettings)


@dataclass(frozen=True)
class BotConfig:
    name: str = check(identifier)
    description: str = ""
    language: str | LanguageSettings = "en"  # a mapping: identify each message's language
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
    answers: AnswerSettings = field(default_factory=AnswerSettings)
    versions: VersionSettings = field(default_factory=VersionSettings)
    # language code -> {a text the bot writes: that text in the language} (bot/dialogue/catalog.py)
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def languages(self) -> LanguageSettings:
        """``language`` as settings: ``language: en`` is English with no identification."""
        if isinstance(self.language, LanguageSettings):
            return self.language
        return LanguageSettings(code=self.language, detect=False)


@dataclass(frozen=True)
class BotDefinition:
    """A loaded bot: its folder, its validated config and the file it came from."""

    root: Path
    config: BotConfig
    file: Path
    artefacts: Path | None = None  # the trained artefacts' folder; None: the build folder

    @property
    def build_dir(self) -> Path:
        return self.root / BUILD_DIR

    @property
    def artefacts_dir(self) -> Path:
        return self.artefacts or self.build_dir

    @property
    def version(self) -> int | None:
        """The trained version the artefacts are (bot/versions/); None before any."""
        folder = self.artefacts_dir
        return int(folder.name) if folder.parent.name == VERSIONS_DIR \
            and folder.name.isdigit() else None

    # where `bot train` keeps each artefact (the served version's folder: bot/versions/)
    @property
    def index_dir(self) -> Path:
        return self.artefacts_dir / "faq_index"

    @property
    def faq_encoder_dir(self) -> Path:
        return self.artefacts_dir / "faq_encoder"

    @property
    def classifier_dirs(self) -> ClassifierFolders:
        return ClassifierFolders(self.artefacts_dir / "classifier",
                                 self.artefacts_dir / "sentiment")

    @property
    def adapter_dir(self) -> Path:
        return self.artefacts_dir / "adapter"

    @property
    def policy_dir(self) -> Path:
        return self.artefacts_dir / "answer_policy"

    @property
    def adapter_checkpoints(self) -> Path:
        return self.build_dir / "adapter_checkpoint"

    def shown(self, path: Path) -> str:
        """``path`` as errors and citations show it: relative to the bot folder's parent."""
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def faq_sources(self) -> list[FaqSource]:
        """The FAQ files named in ``faq.sources`` and ``faq.agent_sources`` (their passages
        are for agents), in a stable order: files, globs, or folders (every file of a
        supported format in it, sub-folders included)."""
        faq = self.config.faq
        if faq is None:
            raise ConfigError("this bot has no 'faq' section", file=self.shown(self.file))
        audiences: dict[Path, str] = {}
        sites: dict[Path, SiteSource] = {}
        in_folders: set[Path] = set()  # named by a folder or glob, not on their own
        for key, audience in (("sources", "customers"), ("agent_sources", "agents")):
            for i, pattern in enumerate(getattr(faq, key)):
                if (site := site_of(pattern)) is not None:  # the pages its last crawl kept
                    matches = [self.site_snapshot(site)]
                    sites.setdefault(matches[0], site)
                else:
                    matches = self.source_files(pattern)
                    if _is_glob(pattern) or self.path(pattern).is_dir():
                        in_folders.update(matches)
                if not matches:
                    raise ConfigError(f"no FAQ file matches {pattern!r}",
                                      file=self.shown(self.file), path=f"faq.{key}[{i}]")
                for match in matches:  # a file both lists name is for agents
                    if audience == "agents" or match not in audiences:
                        audiences[match] = audience
        return [FaqSource(f, sites[f].url, sites[f].url, sites[f].url, audience, sites[f])
                if f in sites else
                FaqSource(f, str(f.relative_to(self.root)) if f.is_relative_to(self.root)
                          else str(f), self.shown(f), typed_path(f), audience,
                          in_folder=f in in_folders)
                for f, audience in audiences.items()]

    def faq_sites(self) -> list[SiteSource]:
        """The sites ``faq.sources`` and ``faq.agent_sources`` name (crawled by `bot train`)."""
        faq = self.config.faq
        found = [site_of(entry) for entry in (*faq.sources, *faq.agent_sources)] if faq else []
        return list({site.url: site for site in found if site is not None}.values())

    def site_snapshot(self, site: SiteSource, *, served: bool = False) -> Path:
        """The pages of ``site`` the trained artefacts were built from (retrieval/sites/);
        ``served``: those of the version being served (a candidate's is new)."""
        folder = served_folder(self.build_dir) if served else self.artefacts_dir
        return folder / "sites" / f"{site.key}.json"

    def crawl_cache(self, site: SiteSource) -> Path:
        """What the last crawl of ``site`` read, shared by every version: the next crawl
        asks only for what changed."""
        return self.build_dir / "crawl" / f"{site.key}.json"

    def source_files(self, pattern: str) -> list[Path]:
        """The files one ``faq.sources`` entry names: a file, a glob, or a folder's files."""
        if _is_glob(pattern):
            return [m for m in sorted(self.root.glob(pattern)) if m.is_file()]
        path = self.path(pattern)
        if path.is_dir():
            return [m for m in sorted(path.rglob("*")) if m.is_file()
                    and m.suffix.lower() in SOURCE_SUFFIXES and not _hidden(m, path)]
        return [path] if path.is_file() else []

    def uncovered_faq_files(self) -> list[str]:
        """Files in the folders ``faq.sources`` reads from that no entry takes (a
        ``faq/*.yaml`` pattern next to ``faq/returns.md``), as :meth:`shown` names them."""
        if self.config.faq is None:
            return []
        taken = {s.path for s in self.faq_sources()}
        faq = self.config.faq
        folders = {self._folder_of(p) for p in (*faq.sources, *faq.agent_sources)
                   if isinstance(p, str) and site_of(p) is None}
        found = {f for folder in folders for f in folder.rglob("*")
                 if f.is_file() and not _hidden(f, folder) and f not in taken}
        return sorted(self.shown(f) for f in found)

    def _folder_of(self, pattern: str) -> Path:
        """The folder a ``faq.sources`` entry reads from."""
        fixed: list[str] = []
        for part in Path(pattern).parts:
            if _is_glob(part):
                return self.path(str(Path(*fixed))) if fixed else self.root
            fixed.append(part)
        path = self.path(pattern)
        return path if path.is_dir() else path.parent

    def path(self, relative: str) -> Path:
        """Resolve a path written in the YAML relative to the bot folder."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.root / candidate


def _hidden(path: Path, folder: Path) -> bool:
    """A dot-file or a file in a dot-folder below ``folder`` (``.DS_Store``, ``.git/``)."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def typed_path(path: Path) -> str:
    """``path`` as a user at this working directory would type it (relative when inside it),
    for error messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
