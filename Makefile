PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint demo clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed: set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# Style and imports (ruff), then types (mypy on preencode/); both configured in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The demo audio is written once: rewriting it would change the inputs of an existing demo_output.
demo_data/dataset.json: | $(STAMP)
	$(PY) scripts/make_demo_audio.py demo_data/audio

demo: $(STAMP) demo_data/dataset.json
	$(PY) -m preencode.demo

clean:
	rm -rf $(VENV) demo_data demo_output demo_finetune
