# Conclave's container image (docs/container.md).
#
#   docker build -t conclave .                       (or: podman build --format docker -t conclave .)
#
# Two stages: `build` installs every dependency, compiles better-sqlite3 when
# no prebuilt binary is downloadable, compiles the TypeScript, then drops the
# dev dependencies; `runtime` gets node_modules (production only), dist/ and
# the two scripts, and nothing else: no compiler, no npm cache, no sources.
#
# The base images are build arguments, so a machine that cannot reach a
# registry can build on local ones (deploy/local-base/make-base.sh makes them
# from Debian's packages):
#   podman build --format docker --pull=never \
#     --build-arg BUILD_IMAGE=localhost/conclave-base:build \
#     --build-arg RUNTIME_IMAGE=localhost/conclave-base:runtime -t localhost/conclave:dev .
# The build image needs node >= 20.15 with npm, and python3, make and g++ for
# node-gyp; the runtime image node >= 20.15 on the same glibc (both bookworm).
ARG BUILD_IMAGE=node:20-bookworm
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the package's own prepare script would compile sources not copied yet.
# The one install script needed, better-sqlite3's (a prebuilt binary, else a compile), runs
# in the rebuild; the require() proves the binary loads.
RUN npm ci --ignore-scripts --no-audit --no-fund \
  && npm rebuild better-sqlite3 \
  && node -e "new (require('better-sqlite3'))(':memory:').close()"
# The sources (.dockerignore keeps out node_modules, dist, tests, docs and data).
COPY . .
# tsconfig.build.json: the shipped code only (no tests), as `npm pack` builds it.
RUN npx tsc -p tsconfig.build.json \
  && find dist \( -name '*.map' -o -name '*.d.ts' -o -name '.tsbuildinfo*' \) -delete \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && cd node_modules/better-sqlite3 \
  && mv build/Release/better_sqlite3.node /tmp/ \
  && rm -rf build deps src \
  && mkdir -p build/Release \
  && mv /tmp/better_sqlite3.node build/Release/

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="Conclave" \
  org.opencontainers.image.description="A ZooKeeper-style coordination service in TypeScript" \
  org.opencontainers.image.licenses="Apache-2.0" \
  org.opencontainers.image.version="${VERSION}"
# tini runs as PID 1: it hands SIGTERM and SIGINT on to the server (which then flushes its
# storage and exits 0) and reaps orphans, as `docker run --init` would, in Kubernetes too.
# The official node images lack it; the local base (make-base.sh) has it already.
RUN if ! command -v tini >/dev/null; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
  && groupadd --system --gid 10001 conclave \
  && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin conclave \
  && mkdir -p /data /etc/conclave \
  && chown 10001:10001 /data /etc/conclave \
  && chmod 0750 /data
WORKDIR /opt/conclave
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin/conclave.js ./bin/conclave.js
COPY deploy/docker/entrypoint.sh deploy/docker/healthcheck.mjs ./docker/
RUN chmod 0755 docker/entrypoint.sh docker/healthcheck.mjs bin/conclave.js \
  && ln -s /opt/conclave/docker/entrypoint.sh /usr/local/bin/conclave-entrypoint \
  && ln -s /opt/conclave/docker/healthcheck.mjs /usr/local/bin/conclave-healthcheck \
  && ln -s /opt/conclave/bin/conclave.js /usr/local/bin/conclave \
  && node -e "new (require('/opt/conclave/node_modules/better-sqlite3'))(':memory:').close()" \
  && conclave server --help >/dev/null
ENV NODE_ENV=production \
  CONCLAVE_HOME=/opt/conclave \
  CONCLAVE_DATA_DIR=/data \
  CONCLAVE_CONFIG_FILE=/etc/conclave/conclave.cfg
USER 10001:10001
VOLUME ["/data"]
# client (WebSocket, ZooKeeper TCP, four-letter words), peer, admin HTTP
EXPOSE 2181 2888 8080
# /readyz: in a quorum and synced (or standalone). podman keeps HEALTHCHECK only with --format docker.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["conclave-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "conclave-entrypoint"]
CMD []
