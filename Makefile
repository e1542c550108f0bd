# Two commands: `make demo` (train on data_samples/, evaluate the held-out cases) and `make test`.
# Each creates .venv and installs the project on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of this version lies on the development machines' disk; an unpinned torch pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pipeline demo

test: $(STAMP)
	$(PY) -m pytest -q -n auto --maxprocesses 4

clean:
	rm -rf $(VENV) runs .pytest_cache *.egg-info
