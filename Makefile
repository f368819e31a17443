# `make demo` and `make test` bootstrap their own virtualenv from pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench fuzz dist clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,requests,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/taap demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# pytest exits 5 when it collected nothing; make treats any non-zero status as failure.
unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# The sdist and the wheel, into dist/ (README "Install").
dist: $(STAMP)
	$(BIN)/python -m build --outdir dist .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Coverage-guided fuzzing: every target of fuzz/fuzz_taap.py, FUZZ_RUNS executions each.
FUZZ_RUNS ?= 1000000
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	for t in pop request json pairs basic v6 token; do \
	  $(BIN)/python fuzz/fuzz_taap.py $$t -runs=$(FUZZ_RUNS) -print_final_stats=1 || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
