"""Fine-tune a token classifier: one tag per word (named entities: CoNLL-2003, the offline fortunes set).

    python tasks/token_classification.py --config fortunes_ner
    accelerate launch --config_file accelerate_configs/cpu.yaml tasks/token_classification.py --config conll2003
    ... --config fortunes_ner --train_file my_sentences.conll --output_dir outputs/my_ner

Same as `hf-finetune train`, with the task fixed; the logic lives in `hf_finetune`.
"""

import sys

from hf_finetune.cli import task_entry_point

if __name__ == "__main__":
    sys.exit(task_entry_point("token_classification"))
