# mea-cli: `make demo` and `make test` work on a fresh machine with no manual step.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
DEMO_DIR ?= demo

.PHONY: install install-dev demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
$(VENV)/.installed: $(PY) pyproject.toml
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	mkdir -p $(DEMO_DIR)
	$(VENV)/bin/mea synth --like mosi --n 300 --seed 0 --out $(DEMO_DIR)/synth-mosi.h5
	$(VENV)/bin/mea info $(DEMO_DIR)/synth-mosi.h5

test: install-dev
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

lint: install-dev
	$(VENV)/bin/ruff check mea_cli tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
