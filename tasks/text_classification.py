"""Fine-tune a text classifier (topics, sentiment, intent, sentence pairs; multi-label with --multi_label true).

    python tasks/text_classification.py --config fortunes_topics
    accelerate launch --config_file accelerate_configs/cpu.yaml tasks/text_classification.py --config sst2
    ... --config my_recipe.yaml --num_train_epochs 1 --output_dir outputs/try

Same as `hf-finetune train`, with the task fixed; the logic lives in `hf_finetune`.
"""

import sys

from hf_finetune.cli import task_entry_point

if __name__ == "__main__":
    sys.exit(task_entry_point("text_classification"))
