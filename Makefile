# Two commands: `make demo` and `make test`. Both create .venv with Python 3.11 and install the package.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: on this machine 2.13.0 is a CPU build on local disk (an open range pulls CUDA).
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/probfusion fit --out runs/demo --overwrite
	$(BIN)/probfusion evaluate runs/demo --attack pgd --name demo-pgd --overwrite
	@echo "Run directory: runs/demo; robustness report (rows.csv, checks.json, figures/): runs/demo/evaluations/demo-pgd"

lint: $(STAMP)
	$(BIN)/ruff check --no-cache probfusion cli studies tests scripts

test: lint
	# Two workers of one thread each: most of the suite is single-threaded Python and study start-up.
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --doctest-modules probfusion/metrics tests

clean:
	rm -rf $(VENV) runs
