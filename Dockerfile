# syntax=docker/dockerfile:1
# Lexus Promotion: the posting daemon, with the `lexus` command as entrypoint.
#   docker build -t lexus-promotion .
#   docker run IMAGE                        -> lexus start (the daemon)
#   docker run IMAGE import --dir /data     -> any other subcommand (migrate, login NAME, ...)
# The database comes from DATABASE_URL or POSTGRES_* (see docker-compose.lexus.yml); the image
# has no embedded PostgreSQL.

ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: every dependency, TypeScript compiled to dist/ ---------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency install scripts, and no `prepare` (the build) before the sources.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, the compiled code and the shipped ad ----------------------
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 passes SIGTERM on to node, so `docker stop` is the daemon's graceful shutdown.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# No dev dependencies; no optional ones (only the embedded PostgreSQL binaries, unused here);
# no install scripts (dist/ comes from the build stage).
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# `lexus` on the PATH, for `docker compose exec lexus lexus status`.
RUN ln -s /app/bin/lexus.js /usr/local/bin/lexus
# The default ad (messages and photos), so the image runs as is. Mount points, bound by compose:
#   /app/config/messages   the ad's variants (config/messages/cars/messages.json)
#   /app/lexus_assets      their photos
#   /app/sessions          the old system's .session files, for `lexus import`
COPY config ./config
COPY lexus_assets ./lexus_assets
RUN mkdir -p /app/sessions && chown node:node /app/sessions

# The unprivileged user of the official Node image (uid 1000).
USER node

# Health and metrics listener of `lexus start` (HEALTH_PORT): GET /healthz, GET /metrics.
EXPOSE 9464
# No curl in a slim image: node asks /healthz itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "require('http').get('http://127.0.0.1:'+(process.env.HEALTH_PORT||9464)+'/healthz', r => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/lexus.js"]
CMD ["start"]
