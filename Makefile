# The README's two commands: `make demo` and `make test`. Both work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint bench migration clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shouwang demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)  # ingest benchmark against Mosquitto on 127.0.0.1:1883 (docs/benchmarks.md); not a test
	$(BIN)/python bench/ingest.py

migration: $(STAMP)  # after changing storage/schema.py: make migration m="what changed" (docs/deploy.md)
	@test -n "$(m)" || { echo 'usage: make migration m="add users table"'; exit 2; }
	$(BIN)/shouwang db revision -m "$(m)"

clean:
	rm -rf $(VENV) var build *.egg-info
