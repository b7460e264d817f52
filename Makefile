# Two entry points (see README "Quick start"): `make run` and `make test`.
# Both create .venv with the pinned-by-range dependencies on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ftsgd sweep sweeps/quickstart.toml --out results/quickstart --resume
	$(BIN)/ftsgd figures results/quickstart --out results/quickstart/figures

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks --out results/bench

clean:
	rm -rf $(VENV) results
