# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   runs the main job on the bundled sample run
#   make test   runs the whole test suite (this is what .ci/run calls)
# Each creates .venv and installs what it needs the first time (and again when
# pyproject.toml or constraints.txt change).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
DEMO_RUN ?= sample_data/run_500m
DEMO_OUT ?= out/demo

.PHONY: demo test test-all lint sample clean

demo: $(VENV)/.base
	$(BIN)/pavement process $(DEMO_RUN) --out $(DEMO_OUT)

test: $(VENV)/.all
	$(BIN)/python -m pytest -m "not slow"

test-all: $(VENV)/.all
	$(BIN)/python -m pytest

lint: $(VENV)/.all
	$(BIN)/ruff check .

# Regenerates the bundled sample run (see sample_data/README.md).
sample: $(VENV)/.base
	$(BIN)/pavement synth --out $(DEMO_RUN) --length-m 500 --seed 1

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Runtime only: what a prefecture installs to process runs (no torch).
$(VENV)/.base: $(VENV)/bin/python pyproject.toml
	$(PIP) install -e .
	touch $@

# Everything: runtime + service + Ray (cluster) + training extra (CPU torch, pinned) + test tools.
# ultralytics pulls opencv-python, which owns cv2/ like opencv-python-headless: keep headless.
$(VENV)/.all: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e '.[train,api,dev,cluster]'
	$(PIP) uninstall -y opencv-python || true
	$(PIP) install --force-reinstall --no-deps -c constraints.txt opencv-python-headless
	touch $@ $(VENV)/.base

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
