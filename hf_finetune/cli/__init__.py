"""`hf-finetune`: a table of commands (`commands.py`), one module per command family.

`python -m hf_finetune.cli` is the `hf-finetune` command.
"""

from hf_finetune.cli.app import main, run_guarded, task_entry_point

__all__ = ["main", "run_guarded", "task_entry_point"]
