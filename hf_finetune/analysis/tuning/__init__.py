"""Hyper-parameter search on Optuna (`hf-finetune tune`): space.py assembles the search space the strategies
declare, storage.py shares a study between workers, study.py runs trials as ordinary runs, report.py writes
what a study leaves.

Optuna is the optional extra `tune`. Only the `tune` command imports this package (the command table loads a
command's module when it runs), so without the extra that command, and only it, stops with one line.
"""

import importlib.util

from hf_finetune.errors import UserError

if importlib.util.find_spec("optuna") is None:
    raise UserError("hf-finetune tune needs Optuna: pip install 'hf_finetune[tune]'")
