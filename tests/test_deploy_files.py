"""The container files (Dockerfile, deploy/compose*.yaml, nginx.conf, deploy/k8s) checked
without a container engine: services, volumes, health checks, the non-root user, ports,
configuration by environment, COPY'd paths, and that every `bot` command in them is a real
one."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shlex
import shutil
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.engines.llama_model import ADAPTER_GGUF, engine_base_file
from adapters.engines.llama_server import LlamaServer, ServerOptions
from bot.cli import build_parser
from bot.definition.loader import load_bot

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
EXAMPLE = ROOT / "example_bots" / "acme_bank"
ENV_REF = re.compile(r"\$\{(\w+)(:-[^}]*)?\}")
# what the image's `bot train` built from the example's bot.yaml, which the production
# bot.yaml must keep for the trained files to stay valid
TRAINED = ("name", "persona", "faq", "embedder", "intents", "entities", "responses",
           "classifier", "answers", "forms", "actions", "dialogue", "fallback", "handoff")
IMAGE_UID = 10001  # the Dockerfile's user, which the Kubernetes pods run as
COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")




# ---- Dockerfile -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def _dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        current += line.strip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    instructions, stage = [], -1
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        stage += keyword.upper() == "FROM"
        instructions.append(Instruction(keyword.upper(), args.strip(), stage))
    return instructions


def _arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    defaults = {}
    for ins in instructions:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name] = value
    return defaults


def _final_env(instructions: list[Instruction]) -> dict[str, str]:
    last = max(i.stage for i in instructions)
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV" and ins.stage == last:
            env.update(item.split("=", 1) for item in shlex.split(ins.args))
    return env


def _bot_commands(shell: str) -> list[list[str]]:
    """Every ``bot ...`` command in a shell line, as argv after ``bot``."""
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, words = [], []
    for token in [*lexer, ";"]:
        if token in ("&&", "||", ";", "|", ">", "&"):
            if words[:1] == ["exec"]:
                words = words[1:]
            if words[:1] == ["bot"]:
                commands.append(words[1:])
            words = [] if token != ">" else ["redirect"]
        else:
            words.append(token)
    return commands


def _parses(argv: list[str]) -> None:
    """``argv`` is a real `bot` command line (sub-command, flags, arguments)."""
    if "--help" in argv:
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(argv)
        assert exit_.value.code == 0
        return
    build_parser().parse_args(argv)


def _exec_form(args: str) -> list[str]:
    parsed: list[str] = json.loads(args)
    return parsed


def _dockerignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_runtime_stage_is_slim_non_root_healthy_and_configured_by_env() -> None:
    instructions = _dockerfile()
    stages = [i for i in instructions if i.keyword == "FROM"]
    assert len(stages) == 2 and "slim" in _arg_defaults(instructions)["PYTHON_IMAGE"]
    final = [i for i in instructions if i.stage == 1]
    keywords = [i.keyword for i in final]
    user = final[keywords.index("USER")].args
    assert user not in ("root", "0") and keywords.index("USER") < keywords.index("CMD")
    assert any(i.keyword == "RUN" and f"useradd --system --uid {IMAGE_UID}" in i.args
               for i in final)
    assert "HEALTHCHECK" in keywords and "/health" in final[keywords.index("HEALTHCHECK")].args
    env = _final_env(instructions)
    assert env["BOT_HOST"] == "0.0.0.0" and env["HF_HUB_OFFLINE"] == "1"
    exposed = final[keywords.index("EXPOSE")].args
    assert exposed == env["BOT_PORT"]
    cmd = shlex.split(_exec_form(final[keywords.index("CMD")].args)[-1])
    assert cmd == ["exec", "bot", "serve", "$BOT_DIR"]
    # `bot serve` takes host, port and log settings from that environment
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        args = build_parser().parse_args(["serve", env["BOT_DIR"]])
    assert (args.host, str(args.port), args.log_format) == ("0.0.0.0", env["BOT_PORT"], "json")


def test_dockerfile_copies_what_exists_and_runs_real_bot_commands() -> None:
    instructions = _dockerfile()
    defaults = _arg_defaults(instructions)
    ignored = _dockerignored()
    assert {".git", ".venv", "**/.bot"} <= set(ignored)
    copied = []
    for ins in instructions:
        if ins.keyword == "COPY" and "--from=" not in ins.args:
            words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
            for source in words[:-1]:
                source = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], source)
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
                assert source not in ignored and source.split("/")[0] not in ignored
                copied.append(source)
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                   ["packages"]["find"]["include"])
    assert {p.rstrip("*") for p in packages} <= set(copied)
    assert {"pyproject.toml", "README.md", "LICENSE", defaults["BOT"]} <= set(copied)
    commands = [argv for ins in instructions if ins.keyword == "RUN"
                for argv in _bot_commands(ins.args)]
    commands += [_bot_commands(_exec_form(i.args)[-1])[0] for i in instructions
                 if i.keyword == "CMD"]
    names = {argv[0] for argv in commands if argv and not argv[0].startswith("-")}
    assert {"engine", "validate", "train", "serve"} <= names
    for argv in commands:
        _parses(argv)
    assert ["engine", "build", "--portable"] in commands


# ---- compose ------------------------------------------------------------------------------

class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's ``!reset`` / ``!override`` tags."""


for _tag in ("!reset", "!override"):
    _ComposeLoader.add_constructor(
        _tag, lambda loader, node: loader.construct_scalar(node)  # type: ignore[arg-type]
        if isinstance(node, yaml.ScalarNode) else loader.construct_object(node, deep=True))


def _compose(name: str = "compose.yaml") -> dict[str, Any]:
    data: dict[str, Any] = yaml.load((DEPLOY / name).read_text(), Loader=_ComposeLoader)
    return data


def _default(value: str) -> str:
    """A compose value with ``${NAME:-default}`` replaced by its default."""
    return COMPOSE_VAR.sub(lambda m: m.group(2) or "", str(value))


def _flags(command: list[str]) -> dict[str, str | None]:
    flags: dict[str, str | None] = {}
    words = [_default(w) for w in command]
    for n, word in enumerate(words):
        if word.startswith("--"):
            following = words[n + 1] if n + 1 < len(words) else None
            flags[word] = None if following is None or following.startswith("--") else following
    return flags


def _bot_yaml_refs() -> dict[str, bool]:
    """The ${NAME}s deploy/acme_bank.yaml reads: name -> required (no default)."""
    text = (DEPLOY / "acme_bank.yaml").read_text()
    return {m.group(1): m.group(2) is None for m in ENV_REF.finditer(text)}


def test_compose_runs_workers_redis_model_server_and_proxy() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"bot", "model", "redis", "proxy"} <= set(services)
    image_checks = "HEALTHCHECK" in {i.keyword for i in _dockerfile()}
    for name, service in services.items():
        own_image = "build" in service  # the Dockerfile's HEALTHCHECK applies
        assert service.get("healthcheck", {}).get("test") or (own_image and image_checks), name
        assert service.get("restart") == "unless-stopped", name
    bot, model, redis, proxy = (services[n] for n in ("bot", "model", "redis", "proxy"))
    assert int(_default(bot["deploy"]["replicas"])) >= 2
    assert {n: d["condition"] for n, d in bot["depends_on"].items()} == {
        "redis": "service_healthy", "model": "service_healthy"}
    env = {k: _default(v) for k, v in bot["environment"].items()}
    assert set(_bot_yaml_refs()) <= set(env), "the workers lack a variable bot.yaml reads"
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    model_port = _flags(model["command"])["--port"]
    assert env["MODEL_SERVER_URL"] == f"http://model:{model_port}/v1"
    assert [str(p) for p in bot["expose"]] == [env["BOT_PORT"]]
    mount = bot["volumes"][0].split(":")
    assert (DEPLOY / mount[0]).is_file() and mount[1] == "/srv/bot/bot.yaml" and mount[2] == "ro"
    # Redis keeps sessions across restarts: append-only file on a named volume
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert "noeviction" in redis["command"]
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]
    # the proxy publishes a port and forwards to the workers' service and port
    assert proxy["ports"] and proxy["depends_on"]["bot"]["condition"] == "service_healthy"
    conf = proxy["volumes"][0].split(":")[0]
    nginx = (DEPLOY / conf).read_text()
    # any nginx from Debian's 1.22 on: the workers' name looked up again at request time
    # through Docker's DNS (a variable in proxy_pass), so scaled or restarted workers are found
    assert re.search(r"resolver 127\.0\.0\.11 valid=\d+s", nginx)
    upstream = re.search(r"set \$(\w+) bot:(\d+);", nginx)
    assert upstream is not None and upstream.group(2) == env["BOT_PORT"]
    passes = re.findall(r"proxy_pass (\S+);", nginx)
    assert passes and set(passes) == {f"http://${upstream.group(1)}"}
    # redis and nginx images can be replaced (deploy/verify.sh: built from deploy/images/)
    for service, variable in ((redis, "REDIS_IMAGE"), (proxy, "PROXY_IMAGE")):
        assert service["image"].startswith(f"${{{variable}:-")
        local = DEPLOY / "images" / f"{_default(service['image']).split(':')[0]}.Dockerfile"
        assert local.is_file(), local
    assert re.search(r"listen\s+" + _default(proxy["ports"][0]).split(":")[-1], nginx)


def test_compose_model_server_runs_llama_server_as_bot_serve_does() -> None:
    model = _compose()["services"]["model"]
    command = model["command"]
    # model-server: llama-server less a --lora whose file is missing (deploy/model_server.sh)
    assert command[0] == "model-server"
    installed = [i.args.split() for i in _dockerfile() if i.keyword == "COPY"
                 and i.args.startswith("deploy/model_server.sh")]
    assert installed == [["deploy/model_server.sh", "/usr/local/bin/model-server"]]
    launcher = (DEPLOY / "model_server.sh").read_text()
    assert launcher.splitlines()[-1] == 'exec llama-server "$@"'
    assert (DEPLOY / "model_server.sh").stat().st_mode & stat.S_IXUSR
    flags = _flags(command)
    own = LlamaServer(Path("base.gguf"), [("bot", Path("a.gguf"))],
                      ServerOptions(threads=2, parallel=8), binary=Path("llama-server"))
    wanted = {w for w in own.command() if w.startswith("--")} - {"--poll"}
    assert wanted <= set(flags), f"missing {wanted - set(flags)}"
    assert flags["--host"] == "0.0.0.0" and flags["--n-gpu-layers"] == "0"
    assert int(str(flags["--ctx-size"])) == 2048 * int(str(flags["--parallel"]))
    # the files: those the Dockerfile links after `bot train` (deploy/model_files.py)
    link_step = next(i.args for i in _dockerfile()
                     if i.keyword == "RUN" and "model_files.py" in i.args)
    folder = re.search(r"model_files\.py /srv/bot (\S+)", link_step)
    assert folder is not None
    assert (flags["--model"], flags["--lora"]) == (f"{folder.group(1)}/base.gguf",
                                                  f"{folder.group(1)}/adapter.gguf")


def test_model_files_are_linked_where_the_model_server_looks(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("model_files", DEPLOY / "model_files.py")
    assert spec is not None and spec.loader is not None
    model_files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_files)
    folder = tmp_path / "acme_bank"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".bot"))
    quoting = model_files.link_model_files(str(folder), tmp_path / "serve")  # no adapter
    assert set(quoting) == {tmp_path / "serve" / "base.gguf"}
    assert [p.name for p in (tmp_path / "serve").iterdir()] == ["base.gguf"]
    bot_yaml = folder / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text().replace("generation: false", "generation: true"))
    with pytest.raises(SystemExit, match=r"adapter\.gguf: not found; run `bot train"):
        model_files.link_model_files(str(folder), tmp_path / "serve")
    adapter = load_bot(folder).adapter_dir / ADAPTER_GGUF
    adapter.parent.mkdir(parents=True)
    adapter.write_bytes(b"GGUF stand-in")
    links = model_files.link_model_files(str(folder), tmp_path / "serve")
    assert (tmp_path / "serve" / "adapter.gguf").read_bytes() == b"GGUF stand-in"
    base = (tmp_path / "serve" / "base.gguf").resolve()
    assert base == engine_base_file(load_bot(folder).config.model).resolve()
    assert (tmp_path / "serve" / "adapter").resolve() == adapter.parent.resolve()  # for vLLM
    assert set(links) == {tmp_path / "serve" / name for name in ("base.gguf", "adapter.gguf",
                                                                 "adapter")}


def test_compose_gpu_override_serves_the_adapter_with_vllm() -> None:
    gpu = _compose("compose.gpu.yaml")["services"]
    model = gpu["model"]
    flags = _flags(model["command"])
    assert "--enable-lora" in flags and flags["--port"] == "8000"
    name, _, path = str(flags["--lora-modules"]).partition("=")
    assert gpu["bot"]["environment"]["MODEL_SERVER_MODEL"] == name
    mounts = dict(v.split(":")[1::-1] for v in model["volumes"])
    assert any(path.startswith(target) for target in mounts)
    assert model["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
