"""`hf-finetune train` with the task fixed to image_classification: `accelerate launch -m hf_finetune.scripts.image_classification --config R`."""

import sys

from hf_finetune.cli import task_entry_point

if __name__ == "__main__":
    sys.exit(task_entry_point("image_classification"))
