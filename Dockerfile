# Vani's container image (docs/SCALING.md; checked by deploy/check-image.sh).
#
#   docker build -t vani .                      # builds from source in a Swift 6 image
#   docker run --rm -p 5000:5000 vani           # the bundled demo model, ready at once
#   docker run --rm -p 5000:5000 -v "$PWD/models:/models:ro" \
#       -e VANI_MODEL=/models/indic600m.safetensors vani   # the real model from a volume
#
# Stages: `build` compiles the release binaries with the Swift runtime linked statically;
# `prebuilt` takes binaries already built on a Debian 12 machine instead (BINARIES=prebuilt,
# with a `prebuilt/` folder in the build context: what CI does, having no registry to pull from);
# `runtime` is slim Debian 12 with only the shared libraries the binaries load, no compiler, a
# non-root user, the demo model and the samples. GPU: see the note at the end.
#
# The base images are build arguments so that a mirror or a local image can stand in for them.
# SWIFT_IMAGE: the toolchain CI builds with is Swift 6.3.1 on Debian 12. Stages are picked by
# BuildKit (Docker's default builder) and buildah, which skip the stage BINARIES does not name.

ARG SWIFT_IMAGE=docker.io/library/swift:6.3-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:12-slim
ARG BINARIES=build

# --- build: the release binaries, Swift runtime and Foundation linked statically -----------------
FROM ${SWIFT_IMAGE} AS build
# Debian 12's own versions; pinning them would break the build at each point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas-dev libfftw3-dev libsndfile1-dev libsoxr-dev libavformat-dev libavcodec-dev libavutil-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Manifest first: the dependency checkout is cached while only sources change.
COPY Package.swift ./
RUN swift package resolve
COPY . .
RUN swift build -c release --static-swift-stdlib --product vani \
 && swift build -c release --static-swift-stdlib --product vani-convert \
 && install -D -s -m 0755 .build/release/vani /out/vani \
 && install -D -s -m 0755 .build/release/vani-convert /out/vani-convert

# --- prebuilt: binaries built outside (`prebuilt/vani`, `prebuilt/vani-convert` in the context) --
FROM scratch AS prebuilt
COPY prebuilt/ /out/

# BINARIES picks where the binaries come from; the stage not picked is not built.
# hadolint ignore=DL3006
FROM ${BINARIES} AS binaries

# --- runtime: slim Debian 12 ---------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# The shared libraries the binaries load, one package each, and nothing else: deploy/check-image.sh
# fails when this list and `ldd` of the release binaries disagree. ca-certificates is data, not a
# library: `vani-convert --from-hub` (an init container) verifies the hub's TLS certificate with it.
ARG RUNTIME_LIBRARIES="libavcodec59 libavformat59 libavutil57 libfftw3-single3 libopenblas0-pthread libsndfile1 libsoxr0"
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ${RUNTIME_LIBRARIES} ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 vani \
 && useradd --system --uid 10001 --gid vani --home-dir /opt/vani --no-create-home --shell /usr/sbin/nologin vani \
 && mkdir -p /models
COPY --from=binaries /out/vani /out/vani-convert /usr/local/bin/
COPY Weights/default.safetensors /opt/vani/Weights/default.safetensors
COPY Samples/ /opt/vani/Samples/
WORKDIR /opt/vani
# The demo model by default; the real one is mounted (e.g. at /models) and named here.
ENV VANI_MODEL=/opt/vani/Weights/default.safetensors
USER 10001:10001
EXPOSE 5000
# /health is 200 once the model is ready (503 while it loads or after a failed load). The image has
# no curl: bash's /dev/tcp speaks the one request.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10m --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5000 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["vani"]
CMD ["serve", "--host", "0.0.0.0", "--port", "5000", "--preload"]

# --- GPU -----------------------------------------------------------------------------------------
# There is no CUDA build yet (`--device cpu` is the only device), so there is no GPU target: the
# GPU overlay (deploy/kubernetes/overlays/gpu) runs this same image with the NVIDIA runtime class,
# which mounts the driver libraries into the container. When a CUDA build lands, its stage goes
# here (FROM an NVIDIA CUDA runtime base given as a build argument, as the others are).

# The default target: the CPU runtime.
FROM runtime
