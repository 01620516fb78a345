"""`hf-finetune train` with the task fixed to multi_task: `accelerate launch -m hf_finetune.scripts.multi_task --config R`."""

import sys

from hf_finetune.cli import task_entry_point

if __name__ == "__main__":
    sys.exit(task_entry_point("multi_task"))
