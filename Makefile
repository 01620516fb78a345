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

.PHONY: setup system-deps demo demo-vision pretrain-vit test test-fast lint clean

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

# Pretrain a small ViT on Fashion-MNIST source classes (reused once finished), fine-tune it on the
# held-out classes, and print the gain over the same ViT trained from scratch. Offline.
demo-vision: setup
	$(OFFLINE) $(PY) -m hf_finetune.vision_demo $(ARGS)

pretrain-vit: setup
	$(OFFLINE) $(VENV)/bin/hf-finetune pretrain $(ARGS)

test: setup
	$(OFFLINE) $(PY) -m pytest $(ARGS)

test-fast: setup
	$(OFFLINE) $(PY) -m pytest -m "not slow" $(ARGS)

lint: setup
	$(VENV)/bin/ruff check hf_finetune tasks tests
	$(VENV)/bin/ruff format --check hf_finetune tasks tests

clean:
	rm -rf outputs build *.egg-info .pytest_cache .ruff_cache
