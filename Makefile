# One command each: `make demo` runs the main job, `make test` passes the tests.
# Both install first, so they work on a fresh checkout. Everything goes into $(VENV); nothing
# touches the user's shell files: `make install` and `make demo` end by printing the line that
# puts `modelyard` on the PATH.
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(shell command -v uv 2>/dev/null)
EXTRAS ?= dev,tensorflow,distributed,postgres,s3,cluster,data,server,ui,serving,tune,widgets
# PyTorch for distributed runs and their tests, pinned: PyTorch()'s default (torch 2.14.1 with
# the torchvision built for it, see runner/envbuild/requirements.py), so its runs use this
# Python with nothing built. The CPU build of torch 2.13.0 has no torchvision that works with it.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
# tf-keras for TensorFlow()'s runs (Keras 2, which tf.distribute's model.fit needs), of the
# tensorflow extra's release, without its requirements: it requires the distribution named
# tensorflow, which would be installed over tensorflow-cpu (see pyproject.toml).
TF_KERAS ?= tf-keras==2.21.*

.PHONY: install system-deps test demo bench lint clean

$(VENV)/.installed: pyproject.toml
ifdef UV
	uv venv --allow-existing --seed --python python3 $(VENV)
	uv pip install --python $(PY) -e ".[$(EXTRAS)]"
else
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[$(EXTRAS)]"
endif
	$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip
	$(PY) -m pip install $(TORCH)
	@# A .venv made when tf-keras pulled in the CUDA build holds both builds, one over the other's
	@# files: remove it, and put the CPU build's files back.
	@if $(PY) -m pip show -q tensorflow >/dev/null 2>&1 \
		&& $(PY) -m pip show -q tensorflow-cpu >/dev/null 2>&1; then \
		$(PY) -m pip uninstall -y tensorflow && $(PY) -m pip install --force-reinstall --no-deps \
			"$$($(PY) -m pip show tensorflow-cpu | sed -n 's/^Version: /tensorflow-cpu==/p')"; \
	fi
	$(PY) -m pip install --no-deps "$(TF_KERAS)"
	touch $@

# What `install` and `demo` print last: the README's shell commands need it once per shell.
ACTIVATE := @echo "modelyard is installed in $(VENV): run \`. $(VENV)/bin/activate\` to put modelyard on the PATH"

install: $(VENV)/.installed
	$(ACTIVATE)

# From Debian's packages when missing: OpenMPI for MPI runs (mpirun; mpi4py comes with the
# `distributed` extra), and PostgreSQL, which the tests start as a throwaway cluster of their
# own (tests/postgres.py), and Chromium, the headless browser of the web UI's tests (tests/ui).
# As root, or through sudo for anyone else.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-deps:
	@missing=""; \
	command -v mpirun >/dev/null 2>&1 || missing="$$missing openmpi-bin libopenmpi-dev"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
		|| missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y $$missing; \
	fi

# loadgroup: the tests of one xdist_group (the Ray cluster's) share one worker and its cluster.
test: system-deps install
	$(PY) -m pytest -n 2 --dist loadgroup tests

# No system-deps: the demo runs neither mpirun nor PostgreSQL, and mpi4py installs from its
# binary wheel (it loads an MPI library only when used), so it needs no root and no apt-get.
demo: $(VENV)/.installed
	$(PY) examples/tf-mnist/submit.py
	$(ACTIVATE)

bench: system-deps install
	$(PY) -m pip install -q -e ".[$(EXTRAS),bench]"
	$(PY) benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
