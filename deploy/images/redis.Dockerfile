# Redis for deploy/compose.yaml where redis:7-alpine cannot be pulled (no image registry):
# Debian's redis-server on the same Debian base as the bot image. deploy/verify.sh builds it
# and points REDIS_IMAGE at it. Like the official image: data in /data, an unprivileged
# user, and protected mode off when no config file is given (the compose network is the
# only way in).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
WORKDIR /data
VOLUME /data
USER redis
EXPOSE 6379
ENTRYPOINT ["sh", "-c", "if [ \"$1\" = redis-server ]; then shift; set -- redis-server --protected-mode no \"$@\"; fi; exec \"$@\"", "--"]
CMD ["redis-server"]
