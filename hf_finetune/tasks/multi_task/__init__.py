"""Multi-task classification, whole in one folder: the task (`task.py`), the shared-encoder model
(`model.py`), the batch sampler (`sampler.py`), the Trainer (`trainer.py`), the saved folder
(`folder.py`) and the predictor (`predictor.py`).
"""

from hf_finetune.tasks.multi_task.folder import MULTITASK_FILE, is_multitask_folder
from hf_finetune.tasks.multi_task.predictor import MultiTaskPredictor, TorchHeads
from hf_finetune.tasks.multi_task.task import MultiTask  # registers the task

__all__ = ["MULTITASK_FILE", "MultiTask", "MultiTaskPredictor", "TorchHeads", "is_multitask_folder"]
