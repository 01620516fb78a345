"""Multi-task classification, whole in one folder: the task (`task.py`), the shared-encoder model
(`model.py`), the batch sampler (`sampler.py`), the Trainer (`trainer.py`), the saved folder
(`folder.py`) and the predictor (`predictor.py`).
"""
from hf_finetune.tasks.multi_task.task import MultiTask  # noqa: F401  (registers the task)
