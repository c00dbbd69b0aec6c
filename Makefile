# Vani: two commands from a fresh Debian/Ubuntu machine.
#   make run   installs what is missing, builds release, transcribes the bundled sample
#   make test  installs what is missing, builds, runs the whole test suite and the deployment checks

SHELL := /bin/bash
APT_PACKAGES := libopenblas-dev libfftw3-dev libsndfile1-dev libsoxr-dev pkg-config
PKGCONFIG_MODULES := openblas fftw3f sndfile soxr
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SAMPLE ?= Samples/hi-sample.wav
LANGUAGE ?= hi

.PHONY: run test deps build release bench clean
.PHONY: check-deploy check-manifests check-image check-load-balancing

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists $(PKGCONFIG_MODULES); then \
		echo "Installing system libraries: $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

release: deps
	swift build -c release --product vani
	swift build -c release --product vani-convert

run: release
	.build/release/vani transcribe $(SAMPLE) --language $(LANGUAGE)

build: deps
	swift build

test: deps
	swift test
	$(MAKE) check-deploy

# The image and Kubernetes manifests (docs/SCALING.md): offline checks, a real image build with
# buildah, two instances behind nginx. Each fails loudly.
check-deploy: check-manifests check-image check-load-balancing

check-manifests:
	deploy/check-manifests.sh

check-image: deps
	deploy/check-image.sh

check-load-balancing: deps
	deploy/check-load-balancing.sh

bench: release
	.build/release/vani bench

clean:
	rm -rf .build
