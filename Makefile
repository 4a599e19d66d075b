# Paperscope: `make run` starts everything on an embedded default; `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install bench worker clean-var lint

install: $(STAMP) node_modules/.installed

# torch first and pinned: the CPU build on this machine's disk / the CPU wheel index, never a
# multi-GB CUDA build pulled in as a dependency of sentence-transformers.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0 || \
	  $(PY) -m pip install --quiet torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(PY) -m project.devstack run

test: install
	$(PY) -m project.devstack exec --profile test -- $(PY) -m pytest $(PYTEST_ARGS)

# e.g. make bench ARGS="search"; ARGS="--help" lists every benchmark (bench/README.md)
bench: install
	$(PY) -m project.devstack exec -- $(PY) manage.py bench $(ARGS)

worker: install
	$(PY) -m celery -A project worker --loglevel INFO

# ruff (pyproject [tool.ruff]), mypy on the apps ([tool.mypy]) and the import contracts ([tool.importlinter])
lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

clean-var:
	rm -rf var/
