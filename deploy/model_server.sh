#!/bin/sh
# The model service's command (deploy/compose.yaml, deploy/k8s/model.yaml), installed in the
# image as `model-server`: llama.cpp's llama-server with the arguments given, less each
# `--lora FILE` whose FILE does not exist. deploy/model_files.py links the base model for
# every bot and the adapter only for a bot that generates its answers (`model.generation:
# true`); a bot that quotes its FAQ has none, and the server then holds the base model alone.
set -eu
count=$#
while [ "$count" -gt 0 ]; do
    arg=$1
    shift
    count=$((count - 1))
    if [ "$arg" = --lora ] && [ "$count" -gt 0 ]; then
        file=$1
        shift
        count=$((count - 1))
        if [ ! -e "$file" ]; then
            echo "model-server: no adapter at $file (the bot does not generate):" \
                 "serving the base model alone" >&2
            continue
        fi
        set -- "$@" --lora "$file"
        continue
    fi
    set -- "$@" "$arg"
done
exec llama-server "$@"
