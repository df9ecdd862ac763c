# syntax=docker/dockerfile:1
# adanns HTTP service. Build: docker build -t adanns .   Run: ADANNS_API_KEY=... docker compose up
# The build stage runs the same install and build commands as CI (.ci/run); the
# runtime stage holds only the service's workspaces and their production dependencies.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# node-gyp needs these for hnswlib-node (the benchmark baseline, a workspace dependency)
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY kernels kernels
COPY packages packages
COPY services services
COPY benchmarks benchmarks
RUN npm ci && npm run build
# services/api and the workspaces it depends on (built), with their production
# dependencies only: no benchmarks (hnswlib-node, vega, autocannon), CLI, dev tools or @types
RUN node services/api/scripts/runtime-tree.mjs /runtime

FROM node:20-bookworm-slim
# WITH_VULKAN=1 adds the Vulkan loader the WebGPU backend (Dawn) needs on an NVIDIA host
ARG WITH_VULKAN=0
RUN if [ "$WITH_VULKAN" = "1" ]; then \
      apt-get update && apt-get install -y --no-install-recommends libvulkan1 && rm -rf /var/lib/apt/lists/*; \
    fi
# 0.0.0.0 is refused without ADANNS_API_KEY (or ADANNS_ALLOW_OPEN=true): the compose file requires the key
ENV NODE_ENV=production \
    ADANNS_HOST=0.0.0.0 \
    ADANNS_PORT=8080 \
    ADANNS_DATA_DIR=/data
WORKDIR /app
COPY --from=build /runtime /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8080
# the service listens at once and /readyz turns ready once every collection is open
# (recovering a large one can take minutes: the start period allows for it)
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.ADANNS_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# SIGTERM drains: readiness off, in-flight requests finish, storage closes
STOPSIGNAL SIGTERM
CMD ["node", "services/api/dist/main.js"]
