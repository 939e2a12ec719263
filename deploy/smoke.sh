#!/usr/bin/env bash
# The container check (docs/deployment.md, "Containers"): build the image, start the compose
# stack (workers, Redis, the llama.cpp model server, nginx), wait until every service is
# healthy, send one REST turn through the proxy, check the answer, and remove the stack.
# Needs a running container engine with compose v2; .ci/run calls it where there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
export BOT_API_TOKEN="${BOT_API_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}"
export SESSION_SECRET="${SESSION_SECRET:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}"
export PROXY_PORT="${PROXY_PORT:-18080}"
compose=(docker compose -p supportbot-check -f deploy/compose.yaml)
trap '"${compose[@]}" down --volumes >/dev/null 2>&1 || true' EXIT
"${compose[@]}" up --detach --build --wait --wait-timeout 900
"${compose[@]}" ps
python3 - <<'PY'
import json
import os
import urllib.request

request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ['PROXY_PORT']}/webhooks/rest",
    json.dumps({"sender": "smoke", "message": "my card has not arrived"}).encode(),
    {"Content-Type": "application/json",
     "Authorization": f"Bearer {os.environ['BOT_API_TOKEN']}"})
with urllib.request.urlopen(request, timeout=60) as response:
    replies = json.load(response)
print(json.dumps(replies, indent=1)[:800])
reply = replies[0]
assert reply["kind"] == "faq", reply
assert reply["citations"][0]["passage_id"] == "card-not-arrived", reply
print("container check passed: a REST turn through nginx, a worker, Redis")
PY
