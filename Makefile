# hf_finetune: `make demo` and `make test` work on a fresh machine; each installs what it needs.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q -c constraints.txt
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ACCELERATE_CONFIG ?= accelerate_configs/cpu.yaml
ARGS ?=
# The demo and the tests never need the Hub.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# Standard tasks: `make <recipe>` fine-tunes the recipe's Hub checkpoint on its Hub data set (both need
# the Hub, so no HF_HUB_OFFLINE here). Each is hf_finetune/recipes/<data set>/<name>.yaml; the task script comes from the
# recipe's `task:` key. Override: make sst2 MODEL=distilbert-base-uncased ACCELERATE_CONFIG=... ARGS="..."
STANDARD_TASKS := sst2 imdb ag_news mrpc stsb conll2003 go_emotions cifar10 beans food101
MODEL ?=
recipe_task = $(shell sed -n 's/^task:[[:space:]]*\([A-Za-z0-9_]*\).*/\1/p' $(wildcard hf_finetune/recipes/*/$(1).yaml))

# The transfer report for the text demo: 5 strategies x 4 data fractions, one seed, 2 epochs each, and
# at least compare's 30 optimizer steps per run (so 8 epochs at 5%). Sized to fit 30 minutes on 2 idle
# cores (measured: see README). Resumable: rerunning skips finished runs.
REPORT_OUT ?= outputs/report-fortunes_topics
REPORT_ARGS ?= --strategies scratch,linear_probe,freeze_bottom,full,lora --fractions 0.05,0.1,0.25,1.0 \
	--seeds 42 --num_train_epochs 2

.PHONY: help setup system-deps demo demo-vision pretrain-vit report advise bench bench-predict bench-precision test test-fast lint docs wheel-check clean $(STANDARD_TASKS)

setup: system-deps $(STAMP)

# Real labelled data ships in Debian packages: text in `fortunes`, images in `dataset-fashion-mnist`.
system-deps:
	@test -d /usr/share/games/fortunes -a -d /usr/share/datasets/fashion-mnist || { $(SUDO) apt-get update -q \
		&& $(SUDO) apt-get install -y -q fortunes dataset-fashion-mnist; }

# torch first, pinned, so no dependency resolves it to a CUDA build (see constraints.txt).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(OFFLINE) $(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) \
		tasks/text_classification.py --config fortunes_topics --overwrite_output_dir $(ARGS)

$(STANDARD_TASKS): setup
	$(VENV)/bin/accelerate launch --config_file $(ACCELERATE_CONFIG) tasks/$(call recipe_task,$@).py \
		--config $@ $(if $(MODEL),--model_name_or_path $(MODEL)) $(ARGS)


# Pretrain a small ViT on Fashion-MNIST source classes (reused once finished), fine-tune it on the
# held-out classes, and print the gain over the same ViT trained from scratch. Offline.
demo-vision: setup
	$(OFFLINE) $(PY) -m hf_finetune.cli.vision_demo $(ARGS)

report: setup
	$(OFFLINE) $(VENV)/bin/hf-finetune compare --config fortunes_topics $(REPORT_ARGS) --out $(REPORT_OUT) $(ARGS)

# The advisor on the text demo: prints quadrant, strategy and reasons, writes outputs/advise/fortunes_topics.yaml.
advise: setup
	$(OFFLINE) $(VENV)/bin/hf-finetune advise --config fortunes_topics --out outputs/advise/fortunes_topics.yaml $(ARGS)

pretrain-vit: setup
	$(OFFLINE) $(VENV)/bin/hf-finetune pretrain $(ARGS)

# Our default text and vision pipelines against plain-Trainer set-ups, each in a fresh process; prints the
# table and writes bench/results.json + bench/results.md. 15:39 measured on 2 idle cores; ARGS=--quick: a smoke run.
bench: setup
	$(OFFLINE) $(PY) -m bench.run $(ARGS)

# Prediction: transformers.pipeline() defaults vs our PyTorch path vs ONNX fp32 vs ONNX int8, on the 551 fortunes
# test texts and 2,000 Fashion-MNIST test images; trains and exports its two models once (outputs/bench-predict/),
# writes bench/predict_results.json + .md. ARGS=--quick: a smoke run. See docs/deployment.md.
bench-predict: setup
	$(OFFLINE) $(PY) -m bench.predict $(ARGS)

# Precision parity: the demo recipe in fp32 and in bf16, 3 seeds each (~10 min on 2 AMX cores); writes
# bench/precision_parity.json + .md. ARGS=--quick: a smoke run. See docs/precision.md.
bench-precision: setup
	$(OFFLINE) $(PY) -m bench.precision_parity $(ARGS)

test: setup
	$(OFFLINE) $(PY) -m pytest $(ARGS)

test-fast: setup
	$(OFFLINE) $(PY) -m pytest -m "not slow" $(ARGS)

# The documentation site (mkdocs-material); reference pages are generated from the code at build time
# (docs/hooks/reference.py). --strict: a broken link or a missing page fails the build.
docs: setup
	$(OFFLINE) $(VENV)/bin/mkdocs build --strict --site-dir site

# Install like a user: build sdist + wheel, twine check, install the wheel into a clean venv outside the
# checkout, and run the getting-started commands from an empty folder (.ci/wheel_check.sh).
wheel-check: setup
	VENV_PY=$(PY) PYTHON=$(PYTHON) bash .ci/wheel_check.sh

lint: setup
	$(VENV)/bin/ruff check hf_finetune tasks tests bench docs/hooks
	$(VENV)/bin/ruff format --check hf_finetune tasks tests bench docs/hooks

clean:
	rm -rf outputs build dist site *.egg-info .pytest_cache .ruff_cache

help:
	@echo "make demo          fine-tune MiniLM on real text (Debian fortunes), offline"
	@echo "make demo-vision   pretrain a small ViT, fine-tune it on unseen Fashion-MNIST classes, offline"
	@echo "make test          the whole test suite (what CI runs); make test-fast skips the slow runs"
	@echo "make lint          ruff check and format check"
	@echo "make docs          build the documentation site strictly into site/ (reference pages generated)"
	@echo "make wheel-check   build the wheel, install it in a clean venv, run the getting-started commands"
	@echo "make <task>        a standard task on the Hub (recipe hf_finetune/recipes/*/<task>.yaml):"
	@echo "                   $(STANDARD_TASKS)"
	@echo "  options:         MODEL=<checkpoint> ACCELERATE_CONFIG=<file> ARGS=\"--num_train_epochs 1 ...\""
	@echo "make report        compare 5 strategies x 5 data fractions on the text demo; transfer report (offline)"
	@echo "make advise        recommend a strategy for the text demo from frozen-feature measurements (offline)"
	@echo "make pretrain-vit  pretrain the offline ViT once (reused by the vision recipes)"
	@echo "make bench         speed and memory of our defaults vs plain Trainer set-ups (ARGS=--quick: smoke run)"
	@echo "make bench-predict prediction speed: pipeline() vs our PyTorch path vs ONNX fp32/int8 (ARGS=--quick)"
	@echo "make bench-precision the demo recipe in fp32 and bf16 over 3 seeds: does bf16 cost accuracy?"
	@echo "make setup         create .venv and install; make clean removes outputs and caches"
