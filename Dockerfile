# syntax=docker/dockerfile:1
#
# One image for both halves of lxcfs-ts on Kubernetes:
#   node agent (DaemonSet):   lxcfs-ts [-l] [--enable-cfs] ... MOUNTPOINT
#   admission webhook:        lxcfs-ts webhook ...
#
# Layout (fixed: deploy/ and the node end-to-end test, which assembles the same tree without
# Docker, rely on it):
#   /opt/lxcfs-ts/package.json, bin/, dist/src/, node_modules/ (production dependencies only)
#   /usr/local/bin/node                  pinned Node LTS
#   /usr/local/bin/lxcfs-ts -> /opt/lxcfs-ts/bin/lxcfs-ts
#   entrypoint /opt/lxcfs-ts/bin/lxcfs-ts (a /bin/sh launcher that execs node)
# Runtime tools the agent uses: util-linux mount/umount (attaching /dev/fuse, detaching dead
# mounts, binding the view into containers with `mount -N`), nsenter; coreutils stat, readlink,
# cat; findutils and mawk for the DaemonSet's start-up cleanup. Nothing is ever copied to the host.
#
#   docker build -t lxcfs-ts:0.1.0 .

ARG NODE_VERSION=24.21.0
ARG DEBIAN_RELEASE=bookworm

FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS node-lts

# --- build: compile TypeScript, then drop the development dependencies ---------------------------
FROM node-lts AS build
WORKDIR /build
COPY package.json package-lock.json ./
# No dependency needs an install script; `prepare` (the build) runs below, once the sources are in.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN npx tsc -p tsconfig.json \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && find dist -name '*.map' -delete

# --- runtime ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
     util-linux mount coreutils findutils mawk \
  && rm -rf /var/lib/apt/lists/*
COPY --from=node-lts /usr/local/bin/node /usr/local/bin/node
COPY --from=build /build/package.json /opt/lxcfs-ts/package.json
COPY --from=build /build/bin /opt/lxcfs-ts/bin
COPY --from=build /build/dist/src /opt/lxcfs-ts/dist/src
COPY --from=build /build/node_modules /opt/lxcfs-ts/node_modules
RUN ln -s /opt/lxcfs-ts/bin/lxcfs-ts /usr/local/bin/lxcfs-ts \
  && /opt/lxcfs-ts/bin/lxcfs-ts --version \
  && /opt/lxcfs-ts/bin/lxcfs-ts webhook --print-config >/dev/null
# The agent runs as root (privileged); the webhook's Deployment sets runAsUser 65532.
ENTRYPOINT ["/opt/lxcfs-ts/bin/lxcfs-ts"]
CMD ["--help"]
