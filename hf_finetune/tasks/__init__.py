"""Tasks, one file each: `ls` this folder for the catalogue.

The runnable entry points in the top-level `tasks/` folder are thin wrappers over these.
"""

from hf_finetune.registry import Registry

TASKS = Registry("task", __name__)
register_task = TASKS.register
