# make demo : set up .venv (all four frameworks) if needed, compare the backends, reproduce both books,
#             write figures/
# make test : set up the same environment if needed and run the full test suite
# ENV=modern selects the second environment (.venv-modern: numpy 2, newest jax, no MXNet).

ENV ?= all
PYTHON ?= python3
VENV_all := .venv
VENV_modern := .venv-modern
VENV ?= $(VENV_$(ENV))
EXPECT_all := numpy,torch,jax,mxnet
EXPECT_modern := numpy,torch,jax
PY := $(VENV)/bin/python
STAMP := $(VENV)/.wdlib-installed

.PHONY: env demo test lint docs bench clean

env: $(STAMP)

$(STAMP): requirements/$(ENV).txt pyproject.toml $(wildcard backends/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements/$(ENV).txt
	$(PY) -m pip check
	touch $@

demo: $(STAMP)
	$(PY) examples/compare_backends.py --out figures
	$(PY) -m wdlib reproduce gluonbook --out figures/gluonbook
	$(PY) -m wdlib reproduce d2l --out figures/d2l

test: $(STAMP)
	WDLIB_EXPECT_BACKENDS=$(EXPECT_$(ENV)) $(PY) -m pytest -q

# make bench : the speed benchmarks (benchmarks/run.py): writes benchmarks/results.{md,json}
bench: $(STAMP)
	$(PY) benchmarks/run.py --large

lint: $(STAMP)
	$(PY) -m ruff check .

# make docs : the documentation site (mkdocs + mkdocstrings) into site/; any warning fails the build
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

clean:
	rm -rf .venv .venv-modern figures site
