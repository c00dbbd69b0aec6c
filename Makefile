# Vani: two commands from a fresh Debian/Ubuntu machine.
#   make run   installs what is missing, builds release, transcribes the bundled sample
#   make test  installs what is missing, builds, runs the whole test suite, then checks the
#              running service with the official openai client, curl and Prometheus's parser

SHELL := /bin/bash
APT_PACKAGES := libopenblas-dev libfftw3-dev libsndfile1-dev libsoxr-dev pkg-config python3-venv curl
PKGCONFIG_MODULES := openblas fftw3f sndfile soxr
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SAMPLE ?= Samples/hi-sample.wav
LANGUAGE ?= hi

# The service check's Python packages live in a virtual environment under .build.
CHECK_VENV := .build/service-check-venv
CHECK_PACKAGES := openai==3.57.0 prometheus-client==0.26.0

.PHONY: run test deps build release bench clean service-check check-venv

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists $(PKGCONFIG_MODULES) \
		|| ! command -v curl >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then \
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
	$(MAKE) service-check

# Fails (never skips) when the packages cannot be installed.
check-venv: deps
	@test -x $(CHECK_VENV)/bin/python || python3 -m venv $(CHECK_VENV)
	@$(CHECK_VENV)/bin/python -c 'import openai, prometheus_client' 2>/dev/null \
		|| $(CHECK_VENV)/bin/pip install -q $(CHECK_PACKAGES)

service-check: check-venv
	swift build --product vani
	$(CHECK_VENV)/bin/python Tools/service-check/check.py --vani .build/debug/vani

bench: release
	.build/release/vani bench

clean:
	rm -rf .build
