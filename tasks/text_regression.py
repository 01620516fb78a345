"""Fine-tune a text regressor: one number per text or text pair (STS-B similarity, ratings, readability).

    python tasks/text_regression.py --config fortunes_readability
    accelerate launch --config_file accelerate_configs/cpu.yaml tasks/text_regression.py --config stsb
    ... --config fortunes_readability --train_file ratings.csv --label_column stars --output_dir outputs/mine

Same as `hf-finetune train`, with the task fixed; the logic lives in `hf_finetune`.
"""

import sys

from hf_finetune.cli import task_entry_point

if __name__ == "__main__":
    sys.exit(task_entry_point("text_regression"))
