# nginx for deploy/compose.yaml where nginx:1.28-alpine cannot be pulled (no image
# registry): Debian's nginx (1.22) on the same Debian base as the bot image; deploy/nginx.conf
# works with both. deploy/verify.sh builds it and points PROXY_IMAGE at it. Like the official
# image: only conf.d/ is served (no Debian default site), logs go to the container's output,
# and wget is there for the compose health check.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light wget \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
