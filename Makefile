# Vani: two commands from a fresh Debian/Ubuntu machine.
#   make run   installs what is missing, builds release, transcribes the bundled sample
#   make test  installs what is missing, builds, runs the whole test suite

SHELL := /bin/bash
APT_PACKAGES := libopenblas-dev libfftw3-dev libsndfile1-dev libsoxr-dev pkg-config
PKGCONFIG_MODULES := openblas fftw3f sndfile soxr
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SAMPLE ?= Samples/hi-sample.wav
LANGUAGE ?= hi

.PHONY: run test deps build release bench clean longform openai-clients

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

# The long-form test set (Tests/Fixtures/longform): held-out sentences spoken by espeak-ng with
# pauses into one file per language; needs espeak-ng and sox, Python's standard library only.
longform:
	@if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then \
		echo "Installing espeak-ng, sox and python3 for the long-form test set"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq espeak-ng sox python3; \
	fi
	python3 Tools/longform/make_longform.py render

# The official `openai` client (pinned in Tests/python/requirements.txt) against `vani serve`:
# SSE and realtime transcription. Its own venv; fails loudly.
CLIENT_VENV := .build/venv-openai
openai-clients: build
	@command -v python3 >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3 python3-venv; }
	@[ -x $(CLIENT_VENV)/bin/python ] || python3 -m venv $(CLIENT_VENV) || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv && python3 -m venv $(CLIENT_VENV); }
	$(CLIENT_VENV)/bin/pip install -q -r Tests/python/requirements.txt
	$(CLIENT_VENV)/bin/python Tests/python/openai_clients.py --vani .build/debug/vani

test: deps longform
	swift test
	$(MAKE) openai-clients

bench: release
	.build/release/vani bench

clean:
	rm -rf .build
