# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   - create .venv, install, run the pipeline on the built-in sample sources
#   make test   - create .venv, install with test extras, run the test suite
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test bench clean venv

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# setup.py and the C decoder's source too: editing either rebuilds the extension (src/sensorpipe/access/_wire*.so)
$(STAMP): $(PY) pyproject.toml setup.py src/sensorpipe/access/_wire.c
	$(PY) -m pip install --quiet -e ".[dev]"
	@# byte-compile the package as a regular (non-editable) install does: with PYTHONDONTWRITEBYTECODE set
	@# (as on CI machines) every process would otherwise recompile sensorpipe's source at start-up
	$(PY) -m compileall -q src/sensorpipe
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sensorpipe demo --dir demo_out

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m compileall -q src/sensorpipe
	$(PY) benchmarks/bench_pipeline.py

clean:
	rm -rf demo_out .bench .pytest_cache
