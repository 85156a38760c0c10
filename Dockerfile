# syntax=docker/dockerfile:1
#
# supsup serve in a container. Two images from one file:
#
#   docker build --target cpu -t supsup:cpu .     # Node 22 LTS (Debian 12 slim), TensorFlow.js wasm backend
#   docker build --target gpu -t supsup:gpu .     # CUDA 13 runtime, our CUDA kernels (native/cuda, backend cuda)
#
# Both run as a non-root user, listen on 8080 (REST) and 50051 (gRPC), answer the HEALTHCHECK from
# /readyz, and drain on SIGTERM (exit within SUPSUP_SHUTDOWN_TIMEOUT_MS, 30 s by default: give `docker stop`
# a longer -t, or compose a longer stop_grace_period). Every `supsup serve` flag is a SUPSUP_* variable
# (`docker run --rm supsup:cpu --help`). The model is /app/models/<name>; mount a volume there to keep
# tasks added with PUT /tasks (see docker-compose.yml).
#
# Without a registry (air-gapped machines, this project's CI): deploy/container/build-local.sh builds the
# cpu image with podman from local base images and installs npm packages offline from a warmed cache
# (deploy/container/npm-cache/); .ci/run builds it and runs it (test/system/podman.ts). The gpu image is
# not built here: its CUDA base image can only come from a registry (deploy/README.md).

ARG NODE_IMAGE=node:22-bookworm-slim
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:13.0.2-devel-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------------
# CPU build: production dependencies, and the native mask kernels (build/Release/supsup_kernels.node)
# that the package's install script compiles with node-gyp.
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Build the addon against the image's own Node headers instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
# Offline builds: deploy/container/npm-cache/ holds only its README in a checkout, so this `npm ci` downloads
# from the registry; with a warmed npm cache there (deploy/container/build-local.sh makes one) it installs
# --offline from a copy of that cache (npm needs to write to its cache) and fails rather than reach for a registry.
RUN --mount=type=bind,source=deploy/container/npm-cache,target=/npm-cache \
    if [ -d /npm-cache/_cacache ]; then cp -R /npm-cache /tmp/npm-cache && set -- --offline --cache /tmp/npm-cache; fi \
 && npm ci --omit=dev --no-audit --no-fund "$@" \
 && test -f build/Release/supsup_kernels.node \
 && rm -rf /tmp/npm-cache \
 && npm cache clean --force
# src/ compiled to lib/ (bin/build-js.mjs), which bin/supsup.js runs when it matches the src/ beside it: no tsx at start-up.
COPY bin ./bin
COPY src ./src
RUN node bin/build-js.mjs && test -f lib/.source-hash

# ---------------------------------------------------------------------------------------------------
# CPU image.
FROM ${NODE_IMAGE} AS cpu
# The source commit, for `supsup --version` and supsup_build_info (an image holds no .git); build-local.sh sets it.
ARG SUPSUP_COMMIT=
ENV SUPSUP_COMMIT=${SUPSUP_COMMIT} \
    NODE_ENV=production \
    SUPSUP_HOST=0.0.0.0 \
    SUPSUP_HTTP_PORT=8080 \
    SUPSUP_GRPC_PORT=50051 \
    SUPSUP_BACKEND=wasm
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/build/Release/supsup_kernels.node ./build/Release/supsup_kernels.node
COPY --from=build /app/lib ./lib
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY proto ./proto
# The model directory must be writable by the server: PUT/DELETE /tasks write it.
COPY --chown=node:node models ./models
# Numeric, so that Kubernetes' runAsNonRoot can verify it (the base image's user node is uid/gid 1000).
USER 1000:1000
EXPOSE 8080 50051
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SUPSUP_HTTP_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/supsup.js", "serve"]

# ---------------------------------------------------------------------------------------------------
# GPU build: the CUDA 13 toolkit image, Node 22 from the official Node image (its binary needs glibc >= 2.28;
# Ubuntu 24.04 has 2.39), the CPU addon as in the CPU build, and the CUDA addon (native/cuda/build.sh) with machine
# code for Turing to Blackwell plus PTX for later GPUs. Its CUDA runtime is linked statically: at run time it needs
# only the driver, which the NVIDIA container toolkit mounts. (No @tensorflow/tfjs-node-gpu: it downloads
# libtensorflow 2.9.1 for CUDA 11.2 at install, which neither runs on CUDA 13 nor installs without a network.)
FROM ${NODE_IMAGE} AS node
FROM ${CUDA_DEVEL_IMAGE} AS gpu-build
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/include/node /usr/local/include/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV npm_config_nodedir=/usr/local \
    NODE_API_INCLUDE=/usr/local/include/node
ARG SUPSUP_CUDA_ARCHS="75 80 86 89 90 100 120"
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
RUN npm ci --omit=dev --no-audit --no-fund \
 && test -f build/Release/supsup_kernels.node \
 && SUPSUP_CUDA_ARCHS="${SUPSUP_CUDA_ARCHS}" native/cuda/build.sh \
 && npm cache clean --force
COPY bin ./bin
COPY src ./src
RUN node bin/build-js.mjs && test -f lib/.source-hash

# GPU image. Run with the NVIDIA container toolkit (`docker run --gpus all`, or the compose gpu profile).
# SUPSUP_BACKEND=cuda: started without a usable GPU it exits with the reason instead of serving from the CPU.
FROM ${CUDA_RUNTIME_IMAGE} AS gpu
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# uid 1001: Ubuntu 24.04 images already have uid 1000 (ubuntu); numeric USER so Kubernetes' runAsNonRoot can check it.
RUN useradd --create-home --uid 1001 --user-group supsup
ARG SUPSUP_COMMIT=
ENV SUPSUP_COMMIT=${SUPSUP_COMMIT} \
    NODE_ENV=production \
    SUPSUP_HOST=0.0.0.0 \
    SUPSUP_HTTP_PORT=8080 \
    SUPSUP_GRPC_PORT=50051 \
    SUPSUP_BACKEND=cuda
WORKDIR /app
COPY --from=gpu-build /app/node_modules ./node_modules
COPY --from=gpu-build /app/build/Release/supsup_kernels.node ./build/Release/supsup_kernels.node
COPY --from=gpu-build /app/build/cuda/supsup_cuda.node ./build/cuda/supsup_cuda.node
COPY --from=gpu-build /app/lib ./lib
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY proto ./proto
COPY --chown=supsup:supsup models ./models
USER 1001:1001
EXPOSE 8080 50051
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SUPSUP_HTTP_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/supsup.js", "serve"]

# `docker build .` without --target builds the last stage; make that the CPU image, which runs anywhere.
FROM cpu AS default
