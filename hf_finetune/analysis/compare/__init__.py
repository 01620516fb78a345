"""`hf-finetune compare`: transfer methods side by side on the same splits (`runs.py`), and the transfer report
written from those runs (`report.py`).
"""

from hf_finetune.analysis.compare.runs import Comparison

__all__ = ["Comparison"]
