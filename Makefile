# Vani: two commands from a fresh Debian/Ubuntu machine.
#   make run   installs what is missing, builds release, transcribes the bundled sample
#   make test  installs what is missing, builds, runs the whole test suite (Swift tests), then
#              checks the running service with the official openai client, MLflow's scoring
#              client, curl and Prometheus's parser, the browser page in headless Chromium, and
#              the deployment (Dockerfile, manifests, a real image, two instances behind nginx)
#   make run-server  builds release and serves the API and the browser page on localhost

SHELL := /bin/bash
APT_PACKAGES := libopenblas-dev libfftw3-dev libsndfile1-dev libsoxr-dev libavformat-dev libavcodec-dev libavutil-dev pkg-config python3-venv curl
PKGCONFIG_MODULES := openblas fftw3f sndfile soxr libavformat libavcodec libavutil
# The browser test: Debian's Chromium and its WebDriver, Noto fonts for the Indic scripts in the
# screenshots, Python 3 (standard library only) to drive them.
BROWSER_APT_PACKAGES := chromium chromium-driver fonts-noto-core python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SAMPLE ?= Samples/hi-sample.wav
LANGUAGE ?= hi
HOST ?= 127.0.0.1
PORT ?= 5000

# The service check's Python packages live in a virtual environment under .build.
CHECK_VENV := .build/service-check-venv
# MLflow's own scoring client (mlflow-skinny with pandas and scipy, which it imports) checks the
# drop-in with the DataFrames Python clients send (NaN in the gaps). The official `openai` client
# with its realtime (websockets) extra also drives SSE and realtime transcription
# (Tests/python/openai_clients.py).
CHECK_PACKAGES := openai[realtime]==3.57.0 prometheus-client==0.26.0 mlflow-skinny==3.17.2 pandas==3.1.1 scipy==1.17.1

.PHONY: run test deps browser-deps browser-test build release run-server bench clean service-check check-venv
.PHONY: cuda-nvrtc cuda-compile-check dist check-dist dist-gpu check-dist-gpu
.PHONY: check-deploy check-manifests check-image check-load-balancing longform openai-clients

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists $(PKGCONFIG_MODULES) \
		|| ! command -v curl >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then \
		echo "Installing system libraries: $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 || \
	    ! command -v python3 >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -q "Noto Sans Devanagari"; then \
		echo "Installing the browser test's packages: $(BROWSER_APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BROWSER_APT_PACKAGES); \
	fi

release: deps
	swift build -c release --product vani
	swift build -c release --product vani-convert

run: release
	.build/release/vani transcribe $(SAMPLE) --language $(LANGUAGE)

run-server: deps
	swift build -c release --product vani
	@echo "Open http://$(HOST):$(PORT)/ in a browser (Ctrl-C stops the server)."
	.build/release/vani serve --preload --host $(HOST) --port $(PORT)

build: deps
	swift build

# Four runs of the one test build, each on its own: the service's suites that time sockets,
# uploads, queues and deadlines (with a fake engine); the service's suites that run the real
# model; the hub download's (a local hub, retries, a model conversion); then the rest. Long
# CPU-bound tests beside the timing ones would hold Swift Testing's threads (2 on a 2-core
# machine) while a server under test waits, and its timers would fire late.
MODEL_SERVER_SUITES := BatchingServiceTests|EndToEndTests|LiveTranscriptionTests
test: deps browser-deps longform cuda-nvrtc
	swift build --build-tests
	swift test --skip-build --filter ASRServerTests --skip '$(MODEL_SERVER_SUITES)'
	swift test --skip-build --filter '$(MODEL_SERVER_SUITES)'
	swift test --skip-build --filter HubDownloadTests
	swift test --skip-build --skip 'ASRServerTests|HubDownloadTests'
	$(MAKE) --no-print-directory service-check
	$(MAKE) --no-print-directory openai-clients
	$(MAKE) --no-print-directory browser-test
	$(MAKE) --no-print-directory check-deploy

# NVIDIA's NVRTC from PyPI (no GPU, no toolkit): the CUDA kernels' compile gate in CUDATests
# compiles every kernel with it for sm_80/89/90 (docs/GPU.md). Fails when it cannot be installed.
CUDA_VENV := .build/cuda-venv
NVRTC_WHEEL := nvidia-cuda-nvrtc==13.0.88
cuda-nvrtc: deps
	@test -x $(CUDA_VENV)/bin/python || python3 -m venv $(CUDA_VENV)
	@ls $(CUDA_VENV)/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13 >/dev/null 2>&1 \
		|| $(CUDA_VENV)/bin/pip install -q $(NVRTC_WHEEL)

cuda-compile-check: cuda-nvrtc
	swift test --filter CUDATests

# Fails (never skips) when the packages cannot be installed.
check-venv: deps
	@test -x $(CHECK_VENV)/bin/python || python3 -m venv $(CHECK_VENV)
	@$(CHECK_VENV)/bin/python -c 'import openai, websockets, prometheus_client, mlflow, pandas, scipy' 2>/dev/null \
		|| $(CHECK_VENV)/bin/pip install -q $(CHECK_PACKAGES)

service-check: check-venv
	swift build --product vani
	$(CHECK_VENV)/bin/python Tools/service-check/check.py --vani .build/debug/vani
	$(CHECK_VENV)/bin/python Tools/service-check/mlflow_client_check.py --vani .build/debug/vani

# The page of `vani serve` in headless Chromium (Tests/Browser/browser_test.py starts the server
# and chromedriver itself, on free loopback ports, and stops them).
browser-test: browser-deps
	swift build --product vani
	python3 Tests/Browser/browser_test.py --vani .build/debug/vani

# The image and Kubernetes manifests (docs/SCALING.md): offline checks, a real image build with
# buildah, two instances behind nginx. Each fails loudly.
check-deploy: check-manifests check-image check-load-balancing

check-manifests:
	deploy/check-manifests.sh

check-image: deps
	deploy/check-image.sh

check-load-balancing: deps
	deploy/check-load-balancing.sh

# The long-form test set (Tests/Fixtures/longform): held-out sentences spoken by espeak-ng with
# pauses into one file per language; needs espeak-ng and sox, Python's standard library only.
longform:
	@if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then \
		echo "Installing espeak-ng, sox and python3 for the long-form test set"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq espeak-ng sox python3; \
	fi
	python3 Tools/longform/make_longform.py render

# The official `openai` client (pinned in CHECK_PACKAGES and Tests/python/requirements.txt) against `vani serve`:
# SSE and realtime transcription. The service check's venv; fails loudly.
openai-clients: check-venv
	swift build --product vani
	$(CHECK_VENV)/bin/python Tests/python/openai_clients.py --vani .build/debug/vani

# A portable bundle (docs/GPU.md): static Swift runtime, the C libraries beside the binary.
dist: deps
	Tools/dist/make-dist.sh

check-dist:
	Tools/dist/check-dist.sh

# The GPU check's bundle (vani-gpu-check: no server, no FFmpeg), carried to the GPU machine with
# the checkout for Tools/gpu/check.sh.
dist-gpu: deps
	PRODUCT=vani-gpu-check Tools/dist/make-dist.sh

check-dist-gpu: cuda-nvrtc
	Tools/dist/check-dist-gpu.sh


bench: release
	.build/release/vani bench

clean:
	rm -rf .build
