"""Train several heads on one shared encoder (text or image), one label column per head.

    python tasks/multi_task.py --config fashion_mnist_multitask
    accelerate launch --config_file accelerate_configs/cpu.yaml tasks/multi_task.py --config fortunes_multitask
    ... --config fashion_mnist_multitask --multitask_sampling uniform --multitask_weights 1 0.5

Same as `hf-finetune train`, with the task fixed; the logic lives in `hf_finetune`.
"""

import sys

from hf_finetune.cli import task_entry_point

if __name__ == "__main__":
    sys.exit(task_entry_point("multi_task"))
