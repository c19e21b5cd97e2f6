# One command each: `make demo` runs the main job, `make test` passes the tests.
# Both install first, so they work on a fresh checkout.
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(shell command -v uv 2>/dev/null)
EXTRAS ?= dev,tensorflow

.PHONY: install test demo bench lint clean

$(VENV)/.installed: pyproject.toml
ifdef UV
	uv venv --allow-existing --python python3 $(VENV)
	uv pip install --python $(PY) -e ".[$(EXTRAS)]"
else
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[$(EXTRAS)]"
endif
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -n 2 tests

demo: install
	$(PY) examples/tf-mnist/submit.py

bench: install
	$(PY) benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
