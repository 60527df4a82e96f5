# Set-up, tests and the demo. Every target creates the virtual environment on first use:
#   make test   install (once) and run the test suite (the README's command)
#   make demo   install (once) and run the demo
#   make bench-cli   how fast the `miles` CLI starts
# A second run skips the installs (stamp file .venv/.miles-installed, refreshed when a pyproject.toml changes).

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.miles-installed
TORCH_VERSION := 2.13.0
# Machines without CUDA take the CPU build of torch (a few hundred MB instead of several GB of CUDA wheels).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

# The four first-party distributions, then every plugin package under plugins/ (one pyproject.toml each).
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
DISTRIBUTIONS := miles_core miles_rm_math miles_filters_dapo miles_models_qwen $(PLUGIN_DIRS)
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(DISTRIBUTIONS))
# Test tools: pytest; openai (its client is tested against our OpenAI-compatible endpoints); hatchling and
# editables (a test installs the template plugin into a fresh venv without build isolation).
TEST_TOOLS := pytest pytest-timeout openai hatchling editables

.PHONY: install test demo bench-cli clean-venv

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) $(PYPROJECTS) Makefile
	@echo "== installing torch $(TORCH_VERSION), the Miles distributions and the test tools into $(VENV)"
	echo "torch==$(TORCH_VERSION)" > $(VENV)/constraints.txt
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		echo "CUDA machine: torch $(TORCH_VERSION) from the package index"; \
		$(PIP) install -q "torch==$(TORCH_VERSION)"; \
	elif $(PY) -c "import socket, urllib.parse as u; socket.gethostbyname(u.urlparse('$(TORCH_CPU_INDEX)').hostname)" 2>/dev/null; then \
		echo "no CUDA: CPU build of torch $(TORCH_VERSION) (from $(TORCH_CPU_INDEX))"; \
		$(PIP) install -q "torch==$(TORCH_VERSION)" --extra-index-url $(TORCH_CPU_INDEX); \
	else \
		echo "no CUDA, $(TORCH_CPU_INDEX) unreachable: torch $(TORCH_VERSION) from the configured pip indexes"; \
		$(PIP) install -q "torch==$(TORCH_VERSION)"; \
	fi
	$(PIP) install -q -c $(VENV)/constraints.txt -e "./miles_core[megatron]" $(addprefix -e ./,$(filter-out miles_core,$(DISTRIBUTIONS))) $(TEST_TOOLS)
	touch $(STAMP)

test: $(STAMP)
	@# pytest exits 5 when it collects no test: that is a failure too.
	$(PY) -m pytest tests/fast tests/e2e; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

# The demo: a tiny random-init Qwen3 and the "Say 7:" prompts, then `miles train @examples/demo.args`.
demo: $(STAMP)
	@test -f runs/demo/model/config.json || $(VENV)/bin/miles models create --arch qwen3 --preset tiny --out runs/demo/model
	@test -f runs/demo/prompts.jsonl || $(VENV)/bin/miles say-digit-data --out runs/demo/prompts.jsonl
	rm -rf runs/demo/run
	$(VENV)/bin/miles train @examples/demo.args
	$(VENV)/bin/miles plot runs/demo/run

bench-cli: $(STAMP)
	$(PY) bench/cli_startup.py

clean-venv:
	rm -rf $(VENV)
